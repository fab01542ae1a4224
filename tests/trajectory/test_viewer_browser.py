"""The trajectory viewer in real Chromium (Playwright): paging, filters, an episode's timeline,
rewards, failure cause and the loss-masked token view, and a screenshot.

``AGENTKIT_UPDATE_SCREENSHOTS=1`` also writes the screenshot to docs/viewer.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentkit.testing import build_test_tokenizer
from agentkit.tokenizer import load_tokenizer
from agentkit.trajectory.viewer import EpisodeFilter, ViewerServer
from agentkit.trajectory.viewer.demo import write_demo_store
from agentkit_sandboxes.browser import find_chromium

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None, reason="Debian's chromium is not installed"),
]
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerServer]:
    store = tmp_path_factory.mktemp("viewer") / "store.jsonl"
    anyio.run(lambda: write_demo_store(store, total=300))
    tokenizer = load_tokenizer(build_test_tokenizer())
    with ViewerServer(store, tokenizer=tokenizer) as server:
        yield server


@pytest.fixture(scope="module")
def page(viewer: ViewerServer) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), headless=True)
        context = browser.new_context(viewport={"width": 1500, "height": 900})
        tab = context.new_page()
        tab.goto(viewer.url)
        tab.wait_for_selector("#episodes tbody tr")
        yield tab
        browser.close()


def rows(page: Any) -> list[dict[str, str]]:
    result: list[dict[str, str]] = page.eval_on_selector_all(
        "#episodes tbody tr",
        """rows => rows.map(r => ({id: r.dataset.id, task: r.cells[2].textContent,
            status: r.cells[4].textContent, reward: r.cells[5].textContent}))""",
    )
    return result


def loads(page: Any) -> int:
    return int(page.get_attribute("#episodes", "data-loads") or 0)


def rendered(page: Any, action: Any) -> None:
    """Do ``action`` and wait until the episode list has been rendered again."""
    before = loads(page)
    action()
    page.wait_for_function(f"Number(document.querySelector('#episodes').dataset.loads) > {before}")


def apply(page: Any, **fields: str) -> None:
    page.eval_on_selector("#filters", "form => form.reset()")
    for name, value in fields.items():
        page.fill(f"#f-{name.replace('_', '-')}", value)
    rendered(page, lambda: page.click("#apply"))


def test_paging(page: Any) -> None:
    rendered(page, lambda: page.click("#clear"))
    assert page.text_content("#page-info") == "1–50 of 300"
    assert len(rows(page)) == 50
    first = rows(page)[0]["id"]
    rendered(page, lambda: page.click("#next"))
    assert page.text_content("#page-info") == "51–100 of 300"
    assert first not in {r["id"] for r in rows(page)}
    assert page.is_disabled("#next") is False
    rendered(page, lambda: page.click("#prev"))
    assert page.is_disabled("#prev")


def test_filters(page: Any, viewer: ViewerServer) -> None:
    rendered(page, lambda: page.select_option("#f-status", "model_error"))
    shown = rows(page)
    expected = viewer.index.page(EpisodeFilter(status="model_error"), 0, 500).total
    assert 0 < len(shown) == min(expected, 50)
    assert {r["status"] for r in shown} == {"model_error"}

    apply(page, task="retail-4")
    shown = rows(page)
    assert shown and all("retail-4" in r["task"] for r in shown)
    apply(page, min_reward="0.9")
    shown = rows(page)
    assert shown and all(float(r["reward"]) >= 0.9 for r in shown)
    apply(page, group="g-retail-3", max_reward="0.5")
    assert page.text_content("#page-info") == (
        f"1–{len(rows(page))} of {viewer.index.page(EpisodeFilter(group='g-retail-3', max_reward=0.5)).total}"
    )
    apply(page, text="no-such-episode-anywhere")
    assert rows(page) == [] and page.text_content("#page-info") == "no episodes match"


def open_episode(page: Any, task: str) -> None:
    apply(page, task=task)
    target = next(r for r in rows(page) if r["task"] == task)
    page.click(f"#episodes tbody tr[data-id='{target['id']}']")
    page.wait_for_selector(f"#detail[data-episode='{target['id']}']")
    page.click("#tab-timeline")


def kinds(page: Any) -> list[str]:
    found: list[str] = page.eval_on_selector_all(
        "#timeline .entry", "nodes => nodes.map(n => n.dataset.kind)"
    )
    return found


def test_timeline_rewards_and_user_turns(page: Any) -> None:
    open_episode(page, "retail-4")
    assert kinds(page) == [
        "prompt",
        "prompt",
        "reasoning",
        "tool_call",
        "tool_result",
        "reasoning",
        "text",
        "user",
        "reasoning",
        "text",
    ]
    assert "What is in it?" in page.text_content("#timeline .entry.user")
    assert '"order_id": "#W1003"' in page.text_content("#timeline .entry.tool_call")
    assert "in " in page.text_content("#timeline .entry.reasoning .meta")
    header = page.text_content("#detail-header")
    assert "reward0.5" in header.replace(" ", "")
    assert "correct" in page.text_content("#reward-components")


def test_tool_error_and_failure_cause(page: Any) -> None:
    open_episode(page, "retail-2")
    error = page.text_content("#timeline .entry.tool_result.error")
    assert "order #W0000 not found" in error
    open_episode(page, "retail-5")
    failure = page.text_content("#failure")
    assert "model_error (infrastructure)" in failure and "503" in failure
    assert kinds(page)[-1] == "model_error"


def test_token_view_colours_the_loss_mask(page: Any, tmp_path: Path) -> None:
    open_episode(page, "retail-1")
    page.click("#tab-tokens")
    assert page.is_visible("#tokens .tokens")
    pieces: list[dict[str, Any]] = page.eval_on_selector_all(
        "#tokens .tokens .piece",
        """nodes => nodes.map(n => ({source: n.dataset.source, mask: n.dataset.mask,
            text: n.textContent, bg: getComputedStyle(n).backgroundColor}))""",
    )
    sources = [p["source"] for p in pieces]
    assert sources[0] == "prompt" and "model" in sources and "tool" in sources
    assert all((p["mask"] == "1") == (p["source"] == "model") for p in pieces)
    colours = {p["source"]: p["bg"] for p in pieces}
    assert colours["model"] != colours["prompt"] and colours["model"] != colours["tool"]
    model_text = "".join(p["text"] for p in pieces if p["source"] == "model")
    assert "<think>Look the order up.</think>" in model_text
    tokens_shot = tmp_path / "viewer-tokens.png"
    page.screenshot(path=str(tokens_shot), full_page=False)

    shot = tmp_path / "viewer.png"
    page.click("#tab-timeline")
    open_episode(page, "retail-4")
    page.screenshot(path=str(shot), full_page=False)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("AGENTKIT_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(shot, DOCS / "viewer.png")
        shutil.copy(tokens_shot, DOCS / "viewer-tokens.png")
