"""httpx (the trio transport, ~7 MiB with what it pulls in) is not imported by the asyncio path:
not by importing the agent and the chat backend, not by classifying a failure; once imported,
its exceptions are classified as before."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import httpx
import pytest

from agentkit.models.failures import classify
from agentkit.trajectory.records import AttemptCause

NOT_LOADED = textwrap.dedent(
    """
    import sys
    from agentkit import Agent, tool
    from agentkit.models import SGLangChat
    from agentkit.models.failures import classify
    from agentkit.models.transport import Transport

    Transport()
    for exc in (TimeoutError(), ConnectionResetError(), ValueError("x")):
        classify(exc)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("httpx", "httpcore", "pygments"))
    print(",".join(loaded))
    """
)


def test_the_asyncio_path_does_not_import_httpx() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NOT_LOADED], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


@pytest.mark.parametrize(
    ("exc", "cause", "cut_off"),
    [
        (httpx.ReadTimeout("slow"), AttemptCause.TIMEOUT, False),
        (httpx.RemoteProtocolError("peer closed"), AttemptCause.CONNECTION, True),
        (httpx.ConnectError("refused"), AttemptCause.CONNECTION, False),
    ],
    ids=["timeout", "cut-off", "connect"],
)
def test_httpx_errors_are_classified_once_httpx_is_loaded(
    exc: Exception, cause: AttemptCause, cut_off: bool
) -> None:
    failure = classify(exc)
    assert failure.cause is cause and failure.retryable
    assert str(failure).startswith("reply cut off: ") is cut_off


def test_an_unrelated_error_is_a_client_error() -> None:
    failure = classify(httpx.InvalidURL("bad"))  # not a transport error: not retried
    assert failure.cause is AttemptCause.CLIENT_ERROR and not failure.retryable
