"""Shared pieces of the loop tests that run agents against the SGLang test server: starting
servers for one test, the model of a mode (chat or tokens), the approval tests' two tools, and
messages compared without the chat server's random tool-call ids.

Registered as a plugin (tests/conftest.py): the fixtures ``server_factory`` (``await
server_factory(policy, **options)`` starts a test server that stops after the test) and
``tokenizer_path`` (the test tokenizer, for token mode) are every test's.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agentkit import Tool, tool
from agentkit.models import SGLangChat
from agentkit.models.base import Model
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import SGLangTestServer, build_test_tokenizer

StartServer = Callable[..., Awaitable[SGLangTestServer]]
_CALL_ID = re.compile(r"call_[0-9a-f]{24}")  # agentkit's tool-call ids (24 hex digits)


@asynccontextmanager
async def server_starter() -> AsyncIterator[StartServer]:
    """``start(policy, **options)`` starts one more test server; all stop at the end."""
    async with AsyncExitStack() as stack:

        async def start(policy: Any, **options: Any) -> SGLangTestServer:
            return await stack.enter_async_context(SGLangTestServer(policy=policy, **options))

        yield start


@pytest.fixture(name="server_factory")
async def server_factory_fixture() -> AsyncIterator[StartServer]:
    async with server_starter() as start:
        yield start


@pytest.fixture(scope="session", name="tokenizer_path")
def tokenizer_path_fixture() -> Path:
    return build_test_tokenizer()


def make_model(mode: str, url: str, tokenizer: str | Path, **options: Any) -> Model:
    """The chat-mode or token-mode client of the server at ``url``."""
    if mode == "chat":
        return SGLangChat(url, **options)
    return SGLangTokens(url, tokenizer, **options)


def mail_tools(
    on_send: Callable[[dict[str, str]], object] | None = None, *, approval: bool = True
) -> list[Tool]:
    """``lookup`` (a city's weather) and ``send_email`` (requires approval unless told; each
    mail it sends is passed to ``on_send``)."""

    @tool
    def lookup(city: str) -> str:
        """Weather of a city.

        Args:
            city: The city.
        """
        return f"{city}: 21C"

    @tool(requires_approval=approval)
    def send_email(to: str, body: str) -> str:
        """Send an email.

        Args:
            to: Address.
            body: Text.
        """
        if on_send is not None:
            on_send({"to": to, "body": body})
        return f"sent to {to}"

    return [lookup, send_email]


def without_call_ids(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages (as JSON dicts) with each tool-call id replaced by its order of appearance: the
    chat server's ids are random, so two runs differ there and nowhere else."""
    text = json.dumps(messages)
    found = dict.fromkeys(_CALL_ID.findall(text))  # in order of appearance
    for number, old in enumerate(found):
        text = text.replace(old, f"id{number}")
    return list(json.loads(text))
