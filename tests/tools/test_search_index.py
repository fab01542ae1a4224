"""The embedded FTS5 index: building from a folder, ranking known documents first, fetching."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit.tool import RunContext, ToolStatus
from agentkit_tools.search import Document, LocalIndex, SearchIndexError, search_tools
from agentkit_tools.search.cli import app
from agentkit_tools.search.documents import html_to_text
from agentkit_tools.search.index import match_expression

# Known documents and a query for each that should put it first, among thousands of distractors
# that share some of the query's words.
KNOWN = {
    "tractor-pump": (
        "Replacing the water pump on a 1998 tractor",
        "Drain the coolant, remove the fan belt and unbolt the old pump from the engine block.",
        "how to replace a tractor water pump",
    ),
    "sourdough": (
        "Sourdough starter feeding schedule",
        "Feed the starter flour and water every twelve hours until it doubles reliably.",
        "feeding a sourdough starter",
    ),
    "tls-renewal": (
        "Renewing TLS certificates automatically",
        "A timer runs the ACME client weekly; certificates renew thirty days before expiry.",
        "automatic certificate renewal",
    ),
    "glacier-retreat": (
        "Measuring glacier retreat with satellite imagery",
        "Repeat optical images show the terminus moving upstream by forty metres a year.",
        "glacier retreat satellite measurements",
    ),
    "bee-swarm": (
        "Catching a honey bee swarm",
        "Shake the cluster into a box at dusk and leave the entrance open for scouts.",
        "catch bee swarm",
    ),
    "rust-borrow": (
        "Understanding the borrow checker",
        "Mutable borrows are exclusive; shared borrows may overlap but forbid mutation in Rust.",
        "rust borrow checker mutable borrows",
    ),
    "violin-rosin": (
        "Choosing rosin for a violin bow",
        "Dark rosin is softer and stickier; light rosin suits warm rooms and brighter tone.",
        '"violin bow" rosin',
    ),
    "tide-tables": (
        "Reading tide tables for kayaking",
        "Slack water between tides is the safest window to cross a tidal channel by kayak.",
        "kayak tide table slack water",
    ),
}

VOCABULARY = [
    "water",
    "pump",
    "engine",
    "starter",
    "flour",
    "timer",
    "client",
    "weekly",
    "image",
    "satellite",
    "box",
    "open",
    "shared",
    "table",
    "window",
    "cross",
    "tone",
    "room",
    "bow",
    "check",
    "mutable",
    "replace",
    "feed",
    "measure",
    "catch",
    "read",
    "choose",
    "garden",
    "river",
    "market",
    "station",
    "paper",
    "glass",
    "stone",
    "cloud",
    "music",
    "forest",
    "valley",
    "harbour",
    "winter",
    "summer",
    "copper",
    "signal",
    "record",
    "design",
    "bridge",
    "lantern",
    "orchard",
    "meadow",
    "village",
]


def _distractors(count: int, seed: int = 7) -> list[Document]:
    rng = random.Random(seed)
    docs = []
    for number in range(count):
        words = rng.choices(VOCABULARY, k=40)
        docs.append(
            Document(
                id=f"noise/{number:05d}.txt",
                title=" ".join(rng.choices(VOCABULARY, k=4)).capitalize(),
                text=" ".join(words),
            )
        )
    return docs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    (root / "noise").mkdir()
    with (root / "noise" / "bulk.jsonl").open("w") as out:
        for doc in _distractors(3000):
            record = {"id": doc.id, "title": doc.title, "text": doc.text}
            out.write(json.dumps(record) + "\n")
    for doc_id, (title, body, _) in KNOWN.items():
        (root / f"{doc_id}.md").write_text(f"# {title}\n\n{body}\n")
    (root / "page.html").write_text(
        "<html><head><title>Lighthouse keepers</title><style>p{}</style></head>"
        "<body><nav>menu</nav><p>The keeper trimmed the lamp wick at dusk.</p>"
        "<script>var x = 'lamp';</script></body></html>"
    )
    (root / "notes.txt").write_text("Plain notes\nabout nothing in particular\n")
    (root / "image.png").write_bytes(b"\x89PNG not indexed")
    (root / "broken.jsonl").write_text('{"id": "ok-1", "text": "fine"}\nnot json\n')
    return root


@pytest.fixture(scope="module")
def built(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    path = tmp_path_factory.mktemp("index") / "docs.sqlite"
    index, report = LocalIndex.build(corpus, path)
    assert report.documents == 3000 + len(KNOWN) + 2 + 1  # jsonl bulk, md, html+txt, 1 ok line
    assert [p.path for p in report.problems] == ["broken.jsonl"]
    assert "line 2" in report.problems[0].reason
    return index


@pytest.mark.parametrize("doc_id", sorted(KNOWN))
def test_known_queries_rank_the_expected_document_first(built: LocalIndex, doc_id: str) -> None:
    title, _, query = KNOWN[doc_id]
    hits = built.search(query, k=5)
    assert hits[0].id == f"{doc_id}.md"
    assert hits[0].title == title
    assert hits[0].score is not None
    assert [h.score for h in hits] == sorted((h.score or 0 for h in hits), reverse=True)


def test_snippets_come_from_the_body(built: LocalIndex) -> None:
    hit = built.search("coolant fan belt", k=1)[0]
    assert "coolant" in hit.snippet


def test_stemming_matches_other_word_forms(built: LocalIndex) -> None:
    assert built.search("renewed certificate", k=1)[0].id == "tls-renewal.md"


def test_html_is_indexed_as_text_without_scripts(built: LocalIndex) -> None:
    doc = built.get("page.html")
    assert doc is not None
    assert doc.title == "Lighthouse keepers"
    assert "trimmed the lamp wick" in doc.text
    assert "var x" not in doc.text


def test_get_unknown_is_none_and_odd_queries_do_not_fail(built: LocalIndex) -> None:
    assert built.get("nope") is None
    assert built.search("   ?!  ") == []
    for odd in ["AND OR NOT", "NEAR(a b)", '"unterminated', "col:value*", "^start -minus"]:
        assert isinstance(built.search(odd), list)


def test_match_expression_quotes_terms_and_keeps_phrases() -> None:
    assert match_expression('the "violin bow" OR rosin') == '"violin bow" OR "rosin"'
    assert match_expression("the") == '"the"'  # only stopwords: keep them
    assert match_expression("") is None


def test_reopening_a_built_index_and_replacing_documents(built: LocalIndex, tmp_path: Path) -> None:
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(Path(built.path).read_bytes())
    again = LocalIndex.open(copy)
    assert len(again) == len(built)
    again.add([Document(id="bee-swarm.md", title="Bees", text="Swarm season notes")])
    assert len(again) == len(built)
    doc = again.get("bee-swarm.md")
    assert doc is not None
    assert doc.text == "Swarm season notes"
    assert again.search("shake cluster dusk box", k=1)[0].id != "bee-swarm.md"
    again.close()


def test_missing_or_damaged_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SearchIndexError, match="agentkit index build"):
        LocalIndex.open(tmp_path / "absent.sqlite")
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SearchIndexError, match="not a usable index"):
        LocalIndex.open(damaged)
    with pytest.raises(SearchIndexError, match="not a folder"):
        LocalIndex.build(tmp_path / "no-such-folder")


@pytest.mark.anyio
async def test_search_tools_over_the_index(built: LocalIndex) -> None:
    tools = {t.name: t for t in search_tools(built, read_urls=False)}
    assert sorted(tools) == ["read_document", "search"]
    ctx: RunContext[None] = RunContext(deps=None)
    found = await tools["search"].call({"query": "catch bee swarm", "k": 3}, ctx)
    assert found.status is ToolStatus.OK
    assert found.output.startswith("1. [bee-swarm.md] Catching a honey bee swarm")
    read = await tools["read_document"].call({"id": "bee-swarm.md"}, ctx)
    assert "Shake the cluster into a box" in read.output
    missing = await tools["read_document"].call({"id": "nope.md"}, ctx)
    assert missing.status is ToolStatus.ERROR
    assert "no document with id 'nope.md'" in missing.output
    empty = await tools["search"].call({"query": " "}, ctx)
    assert empty.status is ToolStatus.ERROR


@pytest.mark.anyio
async def test_long_documents_are_windowed(tmp_path: Path) -> None:
    index = LocalIndex()
    index.add([Document(id="long", title="Long", text="word " * 5000)])
    tools = {t.name: t for t in search_tools(index, max_doc_chars=1000, read_urls=False)}
    first = await tools["read_document"].call({"id": "long"}, RunContext(deps=None))
    assert "showed characters 0-1000 of 25000; read with offset=1000" in first.output
    last = await tools["read_document"].call({"id": "long", "offset": 24500}, RunContext(deps=None))
    assert "showed characters 24500-25000 of 25000; the end]" in last.output


@pytest.mark.anyio
async def test_unbound_tools_take_the_index_from_deps(built: LocalIndex) -> None:
    class Deps:
        search = built

    tool = search_tools()[0]
    found = await tool.call({"query": "glacier retreat"}, RunContext(deps=Deps()))
    assert "[glacier-retreat.md]" in found.output.splitlines()[0]
    missing = await tool.call({"query": "glacier"}, RunContext(deps=None))
    assert missing.status is ToolStatus.ERROR
    assert "deps.search" in missing.output


def test_cli_builds_and_queries(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.sqlite"
    runner = CliRunner()
    built = runner.invoke(app, ["build", str(corpus), "--out", str(out)])
    assert built.exit_code == 0, built.output
    assert f"indexed {3000 + len(KNOWN) + 3} documents into {out}" in built.output
    found = runner.invoke(app, ["query", "sourdough starter", "--index", str(out), "-k", "2"])
    assert found.exit_code == 0
    assert found.output.startswith("1. [sourdough.md]")
    missing = runner.invoke(app, ["query", "x", "--index", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 1
    bad = runner.invoke(app, ["build", str(tmp_path / "none")])
    assert bad.exit_code == 1


def test_html_to_text_without_dependencies() -> None:
    title, text = html_to_text(
        "<html><head><title>A &amp; B</title><style>p {}</style></head><body><nav>menu</nav>"
        "<p>Hello <b>world</b>&nbsp;!</p><script>track()</script><ul><li>one</li><li>two</li>"
        "</ul></body></html>"
    )
    assert title == "A & B"
    assert text.splitlines() == ["menu", "Hello world !", "one", "two"]


@pytest.mark.anyio
async def test_search_alone_takes_the_index_as_deps(built: LocalIndex) -> None:
    from agentkit_tools.search.tools import search

    found = await search.call({"query": "glacier retreat", "k": 1}, RunContext(deps=built))
    assert found.output.splitlines()[0].startswith("1. [glacier-retreat.md]")
    assert "2. [" not in found.output  # k=1 means one result
    nothing = await search.call({"query": "zzyzx qwerty"}, RunContext(deps=built))
    assert nothing.output == "no results for 'zzyzx qwerty'"


@pytest.mark.anyio
async def test_read_document_alone_windows_by_deps(tmp_path: Path) -> None:
    from agentkit_tools.search.tools import SearchDeps, read_document

    index = LocalIndex()
    index.add([Document(id="long", title="Long", text="word " * 500)])
    deps = SearchDeps(search=index, max_doc_chars=100)
    first = await read_document.call({"id": "long"}, RunContext(deps=deps))
    assert first.output.splitlines()[0] == "[long] Long"
    assert "showed characters 0-100 of 2500; read with offset=100" in first.output
    whole = await read_document.call({"id": "long"}, RunContext(deps=SearchDeps(search=index)))
    assert "[truncated" not in whole.output
