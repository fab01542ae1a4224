"""Server base URLs are checked where the model is built, and a trailing ``/v1`` is dropped."""

from __future__ import annotations

import pytest

from agentkit import Agent
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.urls import ServerPool, normalize_base_url
from agentkit.testing import SGLangTestServer, build_test_tokenizer

BAD = [
    "",
    "   ",
    "localhost:30000",
    "127.0.0.1:30000",
    "ftp://example.com",
    "garbage",
    "http://",
    "http://host:port",
    "http:// spaced.example",
    "http://h:1/?q=1",
    "http://h:1/#frag",
]


@pytest.mark.parametrize("url", BAD)
def test_bad_base_urls_raise_when_the_model_is_built(url: str) -> None:
    with pytest.raises(ValueError, match="base URL"):
        SGLangChat(url)
    with pytest.raises(ValueError, match="base URL"):
        SGLangTokens(url, build_test_tokenizer())
    with pytest.raises(ValueError, match="base URL"):
        SGLangChat(["http://127.0.0.1:1", url])


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:30000", "http://127.0.0.1:30000"),
        ("http://127.0.0.1:30000/", "http://127.0.0.1:30000"),
        ("http://127.0.0.1:30000/v1", "http://127.0.0.1:30000"),
        ("http://127.0.0.1:30000/v1/", "http://127.0.0.1:30000"),
        ("https://gateway.example/sglang/v1", "https://gateway.example/sglang"),
        (" http://h:1 ", "http://h:1"),
    ],
)
def test_base_urls_are_normalised(url: str, base: str) -> None:
    assert normalize_base_url(url) == base
    assert SGLangChat(url).servers.urls == [base]


def test_pool_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ServerPool([])
    with pytest.raises(ValueError, match="twice"):
        ServerPool(["http://h:1", "http://h:1/v1"])
    with pytest.raises(ValueError, match="max_concurrency_per_server"):
        ServerPool("http://h:1", max_concurrency_per_server=0)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_a_v1_base_url_reaches_the_right_endpoints(mode: str) -> None:
    with SGLangTestServer(policy=[format_assistant("", "hello", [])]) as server:
        url = server.base_url + "/v1/"
        model = SGLangChat(url) if mode == "chat" else SGLangTokens(url, build_test_tokenizer())
        async with Agent(model=model) as agent:
            result = await agent.run("hi")
        paths = [r.path for r in server.generation_requests()]
    assert result.ok, result.error
    assert paths == ["/v1/chat/completions" if mode == "chat" else "/generate"]
