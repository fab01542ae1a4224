"""Web search providers and the page reader against fake servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from agentkit.tool import RunContext, ToolStatus
from agentkit_sandboxes.browser import DomainPolicy
from agentkit_tools.search import (
    BraveSearch,
    PageReader,
    ReadError,
    SearchError,
    SearxngSearch,
    TavilySearch,
    search_tools,
)

ARTICLE = """<!doctype html><html><head><title>Otters at play</title></head><body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/shop">Shop</a></nav>
<article><h1>Otters at play</h1>
<p>Sea otters float on their backs and use stones to crack open shellfish, a habit
that researchers have observed in several populations along the Pacific coast.</p>
<p>Young otters learn the technique by watching their mothers for many months before
they manage to open a clam on their own.</p></article>
<footer>Copyright 2026 Example Wildlife Trust. All rights reserved.</footer>
<script>trackVisitor();</script></body></html>"""


class Fake:
    """A fake provider: SearXNG, Brave and Tavily shapes, and every failure mode."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.seen: list[dict[str, Any]] = []

    def count(self, name: str) -> int:
        self.calls[name] = self.calls.get(name, 0) + 1
        return self.calls[name]

    async def searxng(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.query))
        if request.query.get("format") != "json":
            return web.Response(status=403, text="Forbidden")
        results = [
            {"url": f"https://example.org/{i}", "title": f"Result {i}", "content": f"about {i}"}
            for i in range(8)
        ]
        return web.json_response({"query": request.query["q"], "results": results})

    async def brave(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Subscription-Token") != "brave-key":
            return web.json_response({"error": "bad token"}, status=401)
        n = int(request.query.get("count", "3"))
        results = [
            {"url": f"https://brave.example/{i}", "title": f"B{i}", "description": "<b>x</b> y"}
            for i in range(n)
        ]
        return web.json_response({"type": "search", "web": {"results": results}})

    async def tavily(self, request: web.Request) -> web.Response:
        body = await request.json()
        if request.headers.get("Authorization") != "Bearer tavily-key":
            return web.json_response({"detail": "unauthorized"}, status=401)
        self.seen.append(body)
        results = [{"url": "https://t.example/a", "title": "A", "content": "c", "score": 0.9}]
        return web.json_response({"query": body["query"], "results": results})

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.json_response({"results": []})

    async def limited_once(self, request: web.Request) -> web.Response:
        if self.count("limited_once") == 1:
            return web.Response(status=429, headers={"Retry-After": "0"})
        return await self.searxng(request)

    async def limited(self, request: web.Request) -> web.Response:
        self.count("limited")
        return web.Response(status=429, headers={"Retry-After": "120"})

    async def broken(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text="Internal Server Error\ntraceback...")

    async def not_json(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    async def wrong_shape(self, request: web.Request) -> web.Response:
        return web.json_response({"answers": ["no results key"]})

    async def article(self, request: web.Request) -> web.Response:
        return web.Response(text=ARTICLE, content_type="text/html")

    async def big(self, request: web.Request) -> web.Response:
        text = "<html><body>" + "<p>filler paragraph text</p>" * 20000 + "</body></html>"
        return web.Response(text=text, content_type="text/html")

    async def plain(self, request: web.Request) -> web.Response:
        return web.Response(text="line one\nline two " * 400, content_type="text/plain")

    async def binary(self, request: web.Request) -> web.Response:
        return web.Response(body=b"%PDF-1.7 ...", content_type="application/pdf")

    async def to_denied(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("http://denied.example/secret")

    async def loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/page/loop")


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, Fake]]:
    state = Fake()
    app = web.Application()
    app.add_routes(
        [
            web.get("/searxng/search", state.searxng),
            web.get("/brave/web/search", state.brave),
            web.post("/tavily/search", state.tavily),
            web.get("/slow/search", state.slow),
            web.get("/limited-once/search", state.limited_once),
            web.get("/limited/search", state.limited),
            web.get("/broken/search", state.broken),
            web.get("/not-json/search", state.not_json),
            web.get("/wrong-shape/search", state.wrong_shape),
            web.get("/page/article", state.article),
            web.get("/page/big", state.big),
            web.get("/page/plain", state.plain),
            web.get("/page/pdf", state.binary),
            web.get("/page/to-denied", state.to_denied),
            web.get("/page/loop", state.loop),
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", state
    await runner.cleanup()


@pytest.mark.anyio
async def test_searxng_results(fake: tuple[str, Fake]) -> None:
    base, state = fake
    hits = await SearxngSearch(base + "/searxng").search("otters", k=3)
    assert [h.title for h in hits] == ["Result 0", "Result 1", "Result 2"]
    assert hits[0].url == hits[0].id == "https://example.org/0"
    assert hits[0].source == "searxng"
    assert state.seen[0] == {"q": "otters", "format": "json"}


@pytest.mark.anyio
async def test_brave_and_tavily_send_their_keys(
    fake: tuple[str, Fake], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, state = fake
    monkeypatch.setenv("BRAVE_API_KEY", "brave-key")
    hits = await BraveSearch(base_url=base + "/brave").search("q", k=4)
    assert [h.id for h in hits] == [f"https://brave.example/{i}" for i in range(4)]
    assert hits[0].snippet == "<b>x</b> y"
    tavily = await TavilySearch(api_key="tavily-key", base_url=base + "/tavily").search("q", 2)
    assert tavily[0].score == 0.9
    assert state.seen[-1] == {"query": "q", "max_results": 2}
    with pytest.raises(SearchError, match=r"HTTP 401.*check BRAVE_API_KEY"):
        await BraveSearch(api_key="wrong", base_url=base + "/brave").search("q")


def test_missing_keys_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BRAVE_API_KEY", "BRAVE_SEARCH_API_KEY", "TAVILY_API_KEY", "SEARXNG_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SearchError, match="set BRAVE_API_KEY"):
        BraveSearch()
    with pytest.raises(SearchError, match="set TAVILY_API_KEY"):
        TavilySearch()
    with pytest.raises(SearchError, match="set SEARXNG_URL"):
        SearxngSearch()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/slow", r"searxng search timed out after 0\.5 s"),
        ("/limited", r"rate limited \(HTTP 429\); it asks to wait 120 s"),
        ("/broken", r"failed with HTTP 500: Internal Server Error traceback"),
        ("/not-json", r"not JSON \(text/html"),
        ("/wrong-shape", r"unexpected response shape: no 'results' list"),
        ("/searxng-missing", r"HTTP 404"),
    ],
)
async def test_provider_failures_are_clear_errors(
    fake: tuple[str, Fake], path: str, message: str
) -> None:
    base, _ = fake
    provider = SearxngSearch(base + path, timeout=0.5, retries=2, max_retry_wait=1)
    with pytest.raises(SearchError, match=message):
        await provider.search("anything")


@pytest.mark.anyio
async def test_rate_limit_with_a_short_wait_is_retried(fake: tuple[str, Fake]) -> None:
    base, state = fake
    hits = await SearxngSearch(base + "/limited-once").search("x", k=1)
    assert len(hits) == 1
    assert state.calls["limited_once"] == 2


@pytest.mark.anyio
async def test_refused_connection_is_a_clear_error() -> None:
    with pytest.raises(SearchError, match="could not connect"):
        await SearxngSearch("http://127.0.0.1:9", timeout=2).search("x")


@pytest.mark.anyio
async def test_search_tool_turns_provider_errors_into_observations(
    fake: tuple[str, Fake],
) -> None:
    base, _ = fake
    tools = {t.name: t for t in search_tools(SearxngSearch(base + "/broken"))}
    assert sorted(tools) == ["read_url", "search"]  # web results are read by URL
    outcome = await tools["search"].call({"query": "otters"}, RunContext(deps=None))
    assert outcome.status is ToolStatus.ERROR
    assert "HTTP 500" in outcome.output
    ok = {t.name: t for t in search_tools(SearxngSearch(base + "/searxng"))}
    listed = await ok["search"].call({"query": "otters", "k": 2}, RunContext(deps=None))
    assert listed.output.splitlines()[0] == "1. [https://example.org/0] Result 0"


LOCAL = DomainPolicy(allow_private=("127.0.0.1",))  # the fake web server on loopback


@pytest.mark.anyio
async def test_reader_extracts_the_main_text(fake: tuple[str, Fake]) -> None:
    base, _ = fake
    page = await PageReader(policy=LOCAL).read(base + "/page/article")
    assert page.title == "Otters at play"
    assert "use stones to crack open shellfish" in page.text
    assert "trackVisitor" not in page.text
    pytest.importorskip("trafilatura", reason="boilerplate removal needs trafilatura")
    assert "About us" not in page.text


@pytest.mark.anyio
async def test_reader_caps_bytes_and_windows_text(fake: tuple[str, Fake]) -> None:
    base, _ = fake
    reader = PageReader(policy=LOCAL, max_bytes=50_000, max_chars=1_000)
    big = await reader.read(base + "/page/big")
    assert big.cut_at_bytes
    assert big.bytes_read == 50_000
    assert "cut after 50000 bytes" in big.render()
    plain = await reader.read(base + "/page/plain", offset=1_000)
    assert plain.offset == 1_000
    assert plain.truncated
    assert len(plain.text) == 1_000
    assert "read with offset=2000" in plain.render()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/page/pdf", "application/pdf, not text or HTML"),
        ("/page/missing", "answered HTTP 404"),
        ("/page/to-denied", "denied.example' is on the deny list"),
        ("/page/loop", "redirected more than 5 times"),
    ],
)
async def test_reader_failures_are_clear_errors(
    fake: tuple[str, Fake], path: str, message: str
) -> None:
    base, _ = fake
    reader = PageReader(policy=DomainPolicy(deny=("denied.example",), allow_private=("127.0.0.1",)))
    with pytest.raises(ReadError, match=message):
        await reader.read(base + path)


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "0x7f000001", "[::1]"])
async def test_reader_refuses_loopback_unless_the_policy_names_it(
    fake: tuple[str, Fake], host: str
) -> None:
    base, _ = fake
    port = base.rsplit(":", 1)[1]
    with pytest.raises(ReadError, match="loopback address, not allowed"):
        await PageReader().read(f"http://{host}:{port}/page/article")


@pytest.mark.anyio
async def test_reader_reaches_only_the_named_address(fake: tuple[str, Fake]) -> None:
    base, _ = fake
    port = base.rsplit(":", 1)[1]
    only_public_elsewhere = DomainPolicy(allow_private=(f"127.0.0.1:{port}",))
    page = await PageReader(policy=only_public_elsewhere).read(base + "/page/article")
    assert page.title == "Otters at play"
    with pytest.raises(ReadError, match="loopback address, not allowed"):  # localhost is also ::1
        await PageReader(policy=only_public_elsewhere).read(f"http://localhost:{port}/page/article")


@pytest.mark.anyio
async def test_read_url_tool(fake: tuple[str, Fake]) -> None:
    base, _ = fake
    tools = search_tools(SearxngSearch(base + "/searxng"), reader=PageReader(policy=LOCAL))
    read_url = {t.name: t for t in tools}["read_url"]
    ok = await read_url.call({"url": base + "/page/article"}, RunContext(deps=None))
    assert ok.output.startswith(f"Otters at play | {base}/page/article")
    bad = await read_url.call({"url": "file:///etc/passwd"}, RunContext(deps=None))
    assert bad.status is ToolStatus.ERROR
    assert "scheme 'file' is not allowed" in bad.output
    assert json.dumps(bad.output)  # a plain string the model can read


@pytest.mark.anyio
async def test_read_url_alone_takes_the_reader_from_deps(fake: tuple[str, Fake]) -> None:
    from agentkit_tools.search.tools import SearchDeps, read_url

    base, _ = fake
    deps = SearchDeps(reader=PageReader(policy=LOCAL))
    ok = await read_url.call({"url": base + "/page/article"}, RunContext(deps=deps))
    assert ok.output.startswith(f"Otters at play | {base}/page/article")
    # without a reader in deps the default one applies, and it refuses loopback
    refused = await read_url.call({"url": base + "/page/article"}, RunContext(deps=None))
    assert refused.status is ToolStatus.ERROR
    assert "loopback" in refused.output
