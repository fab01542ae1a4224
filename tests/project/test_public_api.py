"""The public API: what ``import agentkit`` offers, including the model backends."""

from __future__ import annotations

import subprocess
import sys

import pytest

import agentkit
from agentkit.models.base import Model


def test_the_backends_are_exported_and_satisfy_the_model_protocol() -> None:
    for name in ("SGLangChat", "SGLangTokens", "EmbeddedChat"):
        backend = getattr(agentkit, name)
        assert backend.__module__.startswith("agentkit.models."), name
        assert callable(getattr(backend, "session", None)), f"{name} has no session()"
    assert agentkit.Model is Model


def test_star_import_and_plain_import_do_not_load_optional_backends() -> None:
    """``from agentkit import *`` must work on a plain install (no numpy): the embedded model is
    reachable as ``agentkit.EmbeddedChat`` but not star-exported; a plain import loads neither it
    nor token mode."""
    code = (
        "import sys\n"
        "import agentkit\n"
        "assert 'agentkit.models.sglang_tokens' not in sys.modules, 'token mode loaded'\n"
        "from agentkit import *\n"
        "assert 'agentkit.models.embedded_chat' not in sys.modules, 'embedded loaded'\n"
        "assert 'EmbeddedChat' not in agentkit.__all__\n"
        "assert 'SGLangTokens' in agentkit.__all__ and 'SGLangChat' in agentkit.__all__\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        agentkit.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
