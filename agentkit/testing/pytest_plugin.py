"""pytest fixtures for testing your own agents against agentkit's SGLang test server.

Installed with agentkit (the ``pytest11`` entry point ``agentkit``), so any project that has
agentkit installed gets them without a ``conftest.py``::

    from agentkit import Agent

    @pytest.mark.anyio
    async def test_greets(scripted_model):
        async with Agent(model=scripted_model(["<think>hi</think>\\nHello!"])) as agent:
            result = await agent.run("Say hello")
        assert result.output == "Hello!"
        assert len(scripted_model.server.generation_requests()) == 1

- ``scripted_model(policy=None, *, mode="chat", **server_options)`` starts a test server with
  ``policy`` (raw GLM-4.5 completions served in order, or a callable; default: the demo's
  calculator policy) and returns a model client for it: ``SGLangChat``, or ``SGLangTokens``
  for ``mode="tokens"``. ``scripted_model.server`` is the last server it started. Close the
  model with the agent (``async with Agent(...)``) or ``await model.aclose()``.
- ``sglang_test_server(policy=None, **server_options)`` starts and returns a bare
  :class:`~agentkit.testing.SGLangTestServer` (``base_url``, ``requests``, ``fail_next``...).

Servers run in their own thread, so the fixtures work in sync tests and under any async
backend; every server a test started is stopped when the test ends. Imports are deferred to
the fixtures, so loading the plugin costs nothing in projects that do not use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

try:
    import pytest
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "agentkit's pytest plugin needs pytest: pip install 'agentkit[testing]'"
    ) from exc

if TYPE_CHECKING:
    from agentkit.models import SGLangChat
    from agentkit.models.sglang_tokens import SGLangTokens
    from agentkit.testing.policy import Policy
    from agentkit.testing.server import SGLangTestServer

__all__ = ["ScriptedModelFactory", "TestServerFactory", "scripted_model", "sglang_test_server"]


class TestServerFactory:
    """Starts SGLang test servers for one test and stops them all at its end."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self) -> None:
        self.servers: list[SGLangTestServer] = []

    def __call__(self, policy: Policy | None = None, **server_options: Any) -> SGLangTestServer:
        from agentkit.testing.server import SGLangTestServer

        if policy is None:
            from agentkit.demo import scripted_calculator_policy

            policy = scripted_calculator_policy
        server = SGLangTestServer(policy, **server_options)
        server.start()
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        while self.servers:
            self.servers.pop().stop()


class ScriptedModelFactory:
    """Builds model clients, each against its own freshly started test server."""

    def __init__(self, servers: TestServerFactory) -> None:
        self._servers = servers

    @property
    def server(self) -> SGLangTestServer:
        """The server behind the model built last."""
        if not self._servers.servers:
            raise LookupError("scripted_model() has not been called in this test yet")
        return self._servers.servers[-1]

    def __call__(
        self,
        policy: Policy | None = None,
        *,
        mode: Literal["chat", "tokens"] = "chat",
        **server_options: Any,
    ) -> SGLangChat | SGLangTokens:
        if mode not in ("chat", "tokens"):
            raise ValueError(f"mode must be 'chat' or 'tokens', not {mode!r}")
        server = self._servers(policy, **server_options)
        if mode == "tokens":
            from agentkit.models.sglang_tokens import SGLangTokens

            return SGLangTokens(server.base_url, server.tokenizer)
        from agentkit.models import SGLangChat

        return SGLangChat(server.base_url)


@pytest.fixture
def sglang_test_server() -> Iterator[TestServerFactory]:
    """``server = sglang_test_server(policy, **options)``: a running SGLang test server."""
    factory = TestServerFactory()
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def scripted_model(sglang_test_server: TestServerFactory) -> ScriptedModelFactory:
    """``model = scripted_model(policy, mode="chat")``: a model client on a test server."""
    return ScriptedModelFactory(sglang_test_server)
