"""Where the tests find the trainers' own code: verl (the ``verl`` package) and slime (not on
PyPI: a source tree from ``SLIME_SRC``, else extracted from the fetched mirror of its
repository). Nothing of either is copied into the project; the tests skip, saying why, when the
code is absent. ``sglang`` is GPU-only: importing slime's rollout manager gets a stub module for
it (only for names slime imports at module level; nothing of it is called)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

SLIME_MIRROR = Path("/work/.mirror/THUDM+slime/repo")


def slime_source(tmp_root: Path) -> Path:
    """A slime source tree on ``sys.path``, or skip."""
    pytest.importorskip("torch", reason="slime's Sample needs torch (pip install torch, CPU)")
    given = os.environ.get("SLIME_SRC")
    if given:
        root = Path(given)
        if not (root / "slime" / "utils" / "types.py").exists():
            pytest.skip(f"SLIME_SRC={given} holds no slime source tree")
    elif SLIME_MIRROR.exists():
        root = tmp_root / "slime_src"
        if not (root / "slime").exists():
            root.mkdir(parents=True, exist_ok=True)
            archive = subprocess.run(
                ["git", f"--git-dir={SLIME_MIRROR}", "archive", "HEAD", "slime"],
                check=True, capture_output=True,
            )  # fmt: skip
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    else:
        pytest.skip("slime's source is absent: set SLIME_SRC to a checkout of THUDM/slime")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


class _GpuOnlyStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Empty modules for a GPU-only package: every public name is a placeholder class."""

    def __init__(self, roots: set[str]) -> None:
        self.roots = roots

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        module.__path__ = []

        def placeholder(attr: str) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)
            return type(attr, (), {})

        module.__getattr__ = placeholder  # type: ignore[method-assign]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def stub_gpu_only(*roots: str) -> None:
    """Stub ``roots`` (e.g. ``sglang``) when they are not installed."""
    missing = set()
    for root in roots:
        try:
            __import__(root)
        except ImportError:
            missing.add(root)
    if missing and not any(isinstance(f, _GpuOnlyStub) for f in sys.meta_path):
        sys.meta_path.append(_GpuOnlyStub(missing))


def import_or_skip(name: str, why: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        pytest.skip(f"{why}: {exc}")
