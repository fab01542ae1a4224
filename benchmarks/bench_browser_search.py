"""Browser and search figures: browser start, action latency, index build rate and query latency.

    nice python benchmarks/bench_browser_search.py [--docs 10000] [--rounds 30] [--skip-browser]
        [--skip-search] [--no-parallel] [--cdp] [--container]

Browser: pool start (Playwright driver + Chromium launch), a fresh per-run context (with its
egress proxy), and the latency of each action against pages served on 127.0.0.1 (p50/p95 over
``--rounds``); every request goes through the session's policy-checking proxy.
Search: the same corpus (chunks of the Python standard library's source text) indexed by
SQLite FTS5 (agentkit's index), and by tantivy and bm25s when they are installed, for
comparison; build rate in documents per second and query latency p50/p95 (top 10, OR queries).
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import random
import re
import statistics
import subprocess
import sysconfig
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

from agentkit_sandboxes.browser import (
    CHROMIUM_ARGS,
    BrowserConfig,
    BrowserContainer,
    BrowserPool,
    BrowserSession,
    DomainPolicy,
    EgressProxy,
    find_chromium,
)
from agentkit_tools.search import Document, LocalIndex

PAGE = """<!doctype html><html><head><title>Page {n}</title></head><body>
<h1>Page {n}</h1><p>{text}</p>
<a href="/page/{next}">Next page</a>
<form action="/page/{next}"><input name=q aria-label="Query"><button>Go</button></form>
</body></html>"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def ms(samples: list[float]) -> str:
    p50, p95 = percentiles(samples)
    return f"p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


# --- browser ------------------------------------------------------------------------------------


class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        number = int(re.sub(r"\D", "", self.path.split("?")[0]) or 0)
        text = " ".join(f"sentence {i} of page {number}." for i in range(60))
        body = PAGE.format(n=number, next=number + 1, text=text).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def timed(samples: list[float], action: Callable[[], Awaitable[Any]]) -> Any:
    started = time.perf_counter()
    value = await action()
    samples.append(time.perf_counter() - started)
    return value


async def one_run(browser: BrowserSession, url: str, samples: dict[str, list[float]]) -> None:
    view = await timed(samples["open"], lambda: browser.open(url))
    link = view.body.split('link "Next page" [ref=')[1].split("]")[0]
    view = await timed(samples["click"], lambda: browser.click(link))
    box = view.body.split('textbox "Query" [ref=')[1].split("]")[0]
    await timed(samples["type+submit"], lambda: browser.type(box, "x", submit=True))
    await timed(samples["read text"], lambda: browser.read("text"))
    await timed(samples["snapshot"], lambda: browser.read("snapshot"))
    await timed(samples["screenshot"], lambda: browser.screenshot())


NAMES = ("session", "open", "click", "type+submit", "read text", "snapshot", "screenshot")


async def bench_browser(
    rounds: int, *, cdp: bool = False, container: bool = False, parallel: bool = True
) -> None:
    if find_chromium() is None:
        print("browser: skipped (no chromium)")
        return
    with serve() as site:
        # Loopback is refused unless named: the bench names its own page server.
        policy = DomainPolicy(allow_private=(site.removeprefix("http://"),))
        pool = BrowserPool(BrowserConfig(policy=policy))
        started = time.perf_counter()
        await pool.start()
        print(f"browser start (driver + launch): {(time.perf_counter() - started) * 1000:.0f} ms")
        await bench_runs(pool, site, rounds, "launched (pipe)")
        for runs in (4, 8) if parallel else ():
            await bench_parallel(pool, site, runs)
        await pool.close()
        if cdp:
            with cdp_chromium() as endpoint:
                config = BrowserConfig(policy=policy, cdp_endpoint=endpoint)
                async with BrowserPool(config) as remote:
                    await bench_runs(remote, site, rounds, "connected over CDP (TCP)")
        if container:
            config = BrowserConfig(policy=policy, container=BrowserContainer())
            started = time.perf_counter()
            async with BrowserPool(config) as boxed:
                print(f"container start + launch: {(time.perf_counter() - started) * 1000:.0f} ms")
                await bench_runs(boxed, site, rounds, "in a Docker container (no network)")
    await bench_proxy_hop(rounds * 5)


async def bench_runs(pool: BrowserPool, site: str, rounds: int, label: str) -> None:
    samples: dict[str, list[float]] = {name: [] for name in NAMES}
    for n in range(rounds):
        began = time.perf_counter()
        async with pool.session() as browser:
            samples["session"].append(time.perf_counter() - began)
            await one_run(browser, f"{site}/page/{n}", samples)
    print(f"browser actions over {rounds} runs (each in a fresh context), {label}:")
    for name in NAMES:
        print(f"  {name:12s} {ms(samples[name])}")


@contextmanager
def cdp_chromium() -> Iterator[str]:
    """A Chromium of our own with a DevTools port on 127.0.0.1, as a container would run it:
    the pool then talks CDP over TCP instead of Playwright's pipe."""
    executable = find_chromium()
    assert executable is not None
    with tempfile.TemporaryDirectory() as profile:
        args = [executable, "--headless", "--remote-debugging-address=127.0.0.1"]
        args += ["--remote-debugging-port=0", f"--user-data-dir={profile}", *CHROMIUM_ARGS]
        process = subprocess.Popen([*args, "about:blank"], stderr=subprocess.PIPE, text=True)
        try:
            assert process.stderr is not None
            for line in process.stderr:
                if line.startswith("DevTools listening on "):
                    yield line.split(" on ", 1)[1].strip()
                    break
            else:
                raise RuntimeError("Chromium printed no DevTools endpoint")
        finally:
            process.terminate()
            process.wait(10)


async def _get(port: int, request: bytes) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            while True:
                await stream.receive()


async def bench_proxy_hop(rounds: int) -> None:
    """One page fetched directly and through a session's egress proxy (policy check, connect to
    the checked address, relay): the proxy's own cost per request, without the browser."""
    with serve() as site:
        port = int(site.rsplit(":", 1)[1])
        direct = b"GET /page/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        proxied = f"GET {site}/page/1 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        policy = DomainPolicy(allow_private=(site.removeprefix("http://"),))
        samples: dict[str, list[float]] = {"direct": [], "proxied": []}
        async with EgressProxy(policy) as proxy:
            for _ in range(rounds):
                await timed(samples["direct"], lambda: _get(port, direct))
                await timed(samples["proxied"], lambda: _get(proxy.port, proxied))
        print(f"one HTTP request over {rounds} rounds (a 4 kB page on 127.0.0.1):")
        for name, values in samples.items():
            print(f"  {name:12s} {ms(values)}")


async def bench_parallel(pool: BrowserPool, site: str, parallel: int) -> None:
    """``parallel`` runs at once on the pooled browser, each in its own context."""
    samples: dict[str, list[float]] = {name: [] for name in NAMES[1:]}

    async def run(n: int) -> None:
        async with pool.session() as browser:
            await one_run(browser, f"{site}/page/{n}", samples)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for n in range(parallel):
            tg.start_soon(run, n)
    wall = time.perf_counter() - started
    actions = sum(len(v) for v in samples.values())
    print(
        f"{parallel} runs in parallel: {wall * 1000:.0f} ms wall for {parallel} full runs "
        f"({actions} actions); open {ms(samples['open'])}"
    )


# --- search -------------------------------------------------------------------------------------


def corpus(count: int) -> list[Document]:
    """Chunks of up to 120 words of the standard library's source text."""
    docs: list[Document] = []
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        words = path.read_text(errors="replace").split()
        for start in range(0, len(words), 120):
            chunk = " ".join(words[start : start + 120])
            docs.append(
                Document(id=f"{path.relative_to(root)}:{start}", title=path.stem, text=chunk)
            )
            if len(docs) == count:
                return docs
    return docs


def queries(docs: list[Document], count: int = 200, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    vocabulary = [w for d in docs[:2000] for w in re.findall(r"[a-z]{4,}", d.text)]
    return [" ".join(rng.sample(vocabulary, rng.randint(1, 3))) for _ in range(count)]


def bench_fts5(docs: list[Document], qs: list[str], folder: Path) -> None:
    started = time.perf_counter()
    index = LocalIndex(folder / "fts5.sqlite")
    index.add(docs)
    index.optimize()
    build = time.perf_counter() - started
    samples = []
    for q in qs:
        began = time.perf_counter()
        index.search(q, 10)
        samples.append(time.perf_counter() - began)
    print(f"  sqlite fts5 (agentkit)  build {len(docs) / build:8.0f} docs/s   query {ms(samples)}")
    index.close()


def bench_tantivy(docs: list[Document], qs: list[str], folder: Path) -> None:
    try:
        import tantivy
    except ImportError:
        print("  tantivy: not installed")
        return
    started = time.perf_counter()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True)
    builder.add_text_field("title", stored=True)
    builder.add_text_field("body", stored=True, tokenizer_name="en_stem")
    schema = builder.build()
    (folder / "tantivy").mkdir()
    index = tantivy.Index(schema, path=str(folder / "tantivy"))
    writer = index.writer(heap_size=100_000_000, num_threads=1)
    for doc in docs:
        writer.add_document(tantivy.Document(id=doc.id, title=doc.title, body=doc.text))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    build = time.perf_counter() - started
    searcher = index.searcher()
    samples = []
    for q in qs:
        began = time.perf_counter()
        query = index.parse_query(re.sub(r"[^\w ]", " ", q), ["title", "body"])
        hits = searcher.search(query, 10).hits
        [searcher.doc(address)["id"] for _, address in hits]
        samples.append(time.perf_counter() - began)
    print(f"  tantivy                 build {len(docs) / build:8.0f} docs/s   query {ms(samples)}")


def bench_bm25s(docs: list[Document], qs: list[str]) -> None:
    try:
        import bm25s
    except ImportError:
        print("  bm25s: not installed")
        return
    started = time.perf_counter()
    retriever = bm25s.BM25()
    tokens = bm25s.tokenize([d.text for d in docs], stopwords="en", show_progress=False)
    retriever.index(tokens, show_progress=False)
    build = time.perf_counter() - started
    samples = []
    for q in qs:
        began = time.perf_counter()
        query = bm25s.tokenize([q], stopwords="en", show_progress=False)
        if query.vocab:
            retriever.retrieve(query, k=10, show_progress=False)
        samples.append(time.perf_counter() - began)
    print(f"  bm25s                   build {len(docs) / build:8.0f} docs/s   query {ms(samples)}")


def bench_search(count: int) -> None:
    docs = corpus(count)
    qs = queries(docs)
    print(f"search: {len(docs)} documents, {len(qs)} queries of 1-3 words, top 10")
    with tempfile.TemporaryDirectory() as tmp:
        bench_fts5(docs, qs, Path(tmp))
        bench_tantivy(docs, qs, Path(tmp))
        bench_bm25s(docs, qs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--no-parallel", action="store_true")
    parser.add_argument(
        "--container", action="store_true", help="also run Chromium in a Docker container"
    )
    parser.add_argument(
        "--cdp", action="store_true", help="also drive a Chromium over CDP/TCP (container cost)"
    )
    options = parser.parse_args()
    if not options.skip_search:
        bench_search(options.docs)
    if not options.skip_browser:
        anyio.run(
            lambda: bench_browser(
                options.rounds,
                cdp=options.cdp,
                container=options.container,
                parallel=not options.no_parallel,
            )
        )


if __name__ == "__main__":
    main()
