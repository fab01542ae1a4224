"""A research agent: searches a local index, reads pages in a real browser, answers with citations.

The library it researches is ``site/`` (a few pages about rock lighthouses), indexed with the
embedded FTS5 index and served on 127.0.0.1 so that the browser can open and follow its links.

Run it against a real GLM-4.5 SGLang server::

    python -m examples.research_agent.agent --model-url http://127.0.0.1:30000 \
        "When was Smeaton's Eddystone tower first lit?"

or offline, against agentkit's SGLang test server with the scripted :func:`demo_policy`::

    python -m examples.research_agent.agent --demo
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from agentkit import Agent, RunResult
from agentkit.models import SGLangChat
from agentkit.testing.policy import PolicyRequest
from agentkit_sandboxes.browser import BrowserPool, BrowserSession, DomainPolicy
from agentkit_tools.browser import browser_tools
from agentkit_tools.search import LocalIndex, search_tools

SITE_DIR = Path(__file__).with_name("site")
DEFAULT_QUESTION = "When was Smeaton's Eddystone tower first lit?"

INSTRUCTIONS = """You are a careful research assistant.
1. Use `search` to find documents in the library.
2. Open a document in the browser at {site_url}/<id> with `browser_open`; follow links by
   clicking their refs with `browser_click`; read pages with `browser_read`.
3. Answer briefly, using only what the pages say. Cite every fact with the URL of the page it
   comes from in square brackets, for example [{site_url}/index.html]."""


@dataclass
class ResearchDeps:
    """What each run gets: its own browser session (cookies, tabs)."""

    browser: BrowserSession


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_site(folder: Path = SITE_DIR) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def build_index(folder: Path = SITE_DIR) -> LocalIndex:
    index, _ = LocalIndex.build(folder)
    return index


def build_agent(model: Any, index: LocalIndex, site_url: str) -> Agent[ResearchDeps, str]:
    tools = search_tools(index, read_urls=False) + browser_tools()
    return Agent(
        model=model,
        instructions=INSTRUCTIONS.format(site_url=site_url),
        tools=tools,
        max_turns=12,
        name="research",
    )


async def research(question: str, model: Any, *, pool: BrowserPool | None = None) -> RunResult[str]:
    """Answer ``question`` from the library: serve it, index it, browse it in a fresh context."""
    index = build_index()
    own_pool = pool is None
    browsers = pool or BrowserPool()
    try:
        with serve_site() as site_url:
            agent = build_agent(model, index, site_url)
            # Only the local library may be loaded: the agent cannot wander off to the web.
            async with browsers.session(policy=DomainPolicy(allow=("127.0.0.1",))) as browser:
                return await agent.run(question, deps=ResearchDeps(browser=browser))
    finally:
        index.close()
        if own_pool:
            await browsers.close()


# --- an offline "model" for the demo and the tests ----------------------------------------------


def _call(name: str, **arguments: Any) -> str:
    args = "".join(
        f"<arg_key>{key}</arg_key>\n<arg_value>{value}</arg_value>\n"
        for key, value in arguments.items()
    )
    return f"<tool_call>{name}\n{args}</tool_call>"


def demo_policy() -> Callable[[PolicyRequest], str]:
    """A scripted policy that researches like a model would: search, open the best hit, click
    through to the linked page by its ref, read it, and answer with citations. It learns where
    the library is served from the instructions, as a model would."""

    def policy(request: PolicyRequest) -> str:
        system = " ".join(str(m.get("content")) for m in request.messages if m["role"] == "system")
        served = re.search(r"in the browser at (http://\S+)/<id>", system)
        if served is None:
            return "<think>no library</think>\nI do not know where the library is served."
        site_url = served.group(1)
        results = [m for m in request.messages if m.get("role") == "tool"]
        last = str(results[-1].get("content", "")) if results else ""
        if last.startswith("Error"):
            return f"<think>a tool failed</think>\nI could not finish the research: {last}"
        if not results:
            query = "Smeaton Eddystone tower first lit"
            return f"<think>search the library</think>\n{_call('search', query=query)}"
        if len(results) == 1:
            hit = re.search(r"^1\. \[([^\]]+)\]", last, re.M)
            if hit is None:
                return "<think>nothing found</think>\nThe library has nothing on this."
            url = f"{site_url}/{hit.group(1)}"
            return f"<think>open the best hit</think>\n{_call('browser_open', url=url)}"
        if len(results) == 2:
            link = re.search(r"link \"Smeaton's tower\" \[ref=(\w+)\]", last)
            if link is None:
                return "<think>no link to follow</think>\nThe page does not say."
            return f"<think>follow the link</think>\n{_call('browser_click', ref=link.group(1))}"
        if len(results) == 3:
            return f"<think>read the page</think>\n{_call('browser_read', format='text')}"
        fact = re.search(r"[^.\n]*first lit on [^.,\n]*", last)
        source = re.search(r"\| (\S+)\n", last)
        if fact is None or source is None:
            return "<think>no date</think>\nThe pages do not say when it was first lit."
        eddystone = f"{site_url}/eddystone.html"
        return (
            "<think>answer with citations</think>\n"
            f"{fact.group(0).strip()} [{source.group(1)}]. It was the third lighthouse on the "
            f"Eddystone rocks, built by John Smeaton [{eddystone}]."
        )

    return policy


async def _demo(question: str) -> RunResult[str]:
    from agentkit.testing import SGLangTestServer

    async with SGLangTestServer(policy=demo_policy()) as server:
        model = SGLangChat(server.base_url)
        try:
            return await research(question, model)
        finally:
            await model.aclose()


async def _research_with(question: str, model_url: str) -> RunResult[str]:
    model = SGLangChat(model_url)
    try:
        return await research(question, model)
    finally:
        await model.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--model-url", help="base URL of a GLM-4.5 SGLang server")
    parser.add_argument("--demo", action="store_true", help="use the scripted test server")
    options = parser.parse_args()
    if options.demo or not options.model_url:
        result = anyio.run(_demo, options.question)
    else:
        result = anyio.run(_research_with, options.question, options.model_url)
    print(result.text)
    print(f"[{result.status.value} in {result.turns} turns]")


if __name__ == "__main__":
    main()
