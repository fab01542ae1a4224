"""The research-agent example end to end: SGLang test server, local index, real Chromium."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from agentkit.testing.policy import PolicyRequest
from agentkit_sandboxes.browser import BrowserPool, DomainPolicy, find_chromium
from examples.research_agent.agent import (
    DEFAULT_QUESTION,
    ResearchDeps,
    build_agent,
    build_index,
    demo_policy,
    research,
    serve_site,
)

needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="Debian's chromium is not installed"
)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[BrowserPool]:
    pytest.importorskip("playwright", reason="playwright is not installed")
    async with BrowserPool() as started:
        yield started


def test_the_index_finds_the_library_pages() -> None:
    index = build_index()
    assert index.search("Smeaton Eddystone tower first lit", k=1)[0].id in {
        "eddystone.html",
        "smeaton.html",
    }
    assert index.search("Fresnel lens Cordouan")[0].id == "fresnel-lens.html"
    assert index.search("Robert Stevenson Angus")[0].id == "bell-rock.html"


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_research_agent_answers_with_citations(pool: BrowserPool) -> None:
    async with SGLangTestServer(policy=demo_policy()) as server:
        model = SGLangChat(server.base_url)
        result = await research(DEFAULT_QUESTION, model, pool=pool)
        await model.aclose()
    assert result.ok, result.error
    site_url = re.search(r"\[(http://127\.0\.0\.1:\d+)/smeaton\.html\]", result.text)
    assert site_url is not None, result.text
    assert "16 October 1759" in result.text
    assert f"[{site_url.group(1)}/eddystone.html]" in result.text
    steps = result.trajectory.steps
    assert [s.call.name for s in steps if s.call] == [
        "search",
        "browser_open",
        "browser_click",
        "browser_read",
    ]
    assert [s.status for s in steps] == ["ok"] * 4
    opened = steps[1].output
    assert opened.startswith("[tab 1/1] The Eddystone lighthouses")
    assert "Smeaton's tower was first lit" in steps[3].output
    assert pool.started  # the shared pool stays up for the next run


@pytest.mark.browser
@needs_chromium
@pytest.mark.anyio
async def test_browser_errors_reach_the_model_as_observations(pool: BrowserPool) -> None:
    """A page outside the allow list is refused; the model sees the error and the run ends
    cleanly with the policy's explanation."""
    seen: list[str] = []

    def policy(request: PolicyRequest) -> str:
        tools = [m for m in request.messages if m.get("role") == "tool"]
        if not tools:
            return (
                "<tool_call>browser_open\n<arg_key>url</arg_key>\n"
                "<arg_value>https://example.com/</arg_value>\n</tool_call>"
            )
        seen.append(str(tools[-1]["content"]))
        return "I cannot open that page."

    with serve_site() as site_url:
        async with SGLangTestServer(policy=policy) as server:
            agent = build_agent(SGLangChat(server.base_url), build_index(), site_url)
            async with pool.session(policy=DomainPolicy(allow=("127.0.0.1",))) as browser:
                result = await agent.run("open example.com", deps=ResearchDeps(browser=browser))
            await agent.aclose()
    assert result.ok
    assert result.trajectory.steps[0].status == "error"
    assert "not on the allow list" in seen[0]
