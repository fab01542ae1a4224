"""Each issue-17 goal's figures, read from the result files its benchmark wrote in this run.

Nothing here is measured or assumed: a goal's "met" is computed from the figures, and a goal
whose benchmark did not run (or could not measure its peer) is reported as not measured.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# The thresholds (issue #17, "Goals").
CPU_PER_STEP_LIMIT = 1.3  # goal 1: agentkit / raw aiohttp loop, client CPU per step
TOKENS_OVER_CHAT_LIMIT = 1.2  # goal 2
PARSE_WHOLE_MIN = 2.0  # goal 3: agentkit / SGLang, whole text (small and large)
PARSE_STREAM_MIN = 5.0  # goal 3: streaming
PEAK_MEMORY_LIMIT = 1.3  # goal 4: agentkit / raw loop, peak RSS at N=1000
EMBEDDED_SECONDS = 3.0  # goal 5: one question, the whole process with an empty cache
EMBEDDED_MB = 500.0


class Goal(BaseModel):
    """One goal's line of the table: what was measured, before and after, and whether it is met
    (``None``: not measured in this run, with the reason in ``figures``)."""

    number: int
    title: str
    figures: str
    met: bool | None


def _row(rows: list[dict[str, Any]], contender: str, n: int) -> dict[str, Any] | None:
    for row in rows:
        cell = row["cell"]
        if cell["contender"] == contender and cell["n"] == n and cell["latency_ms"] == 0.0:
            return dict(cell)
    return None


def runtime_goals(result: dict[str, Any] | None) -> list[Goal]:
    """Goals 1, 4 and 6 from ``bench_runtime.py``'s JSON."""
    titles = {
        1: "client CPU per step within 1.3x of a raw aiohttp loop (sync tool, records on, 0 ms)",
        4: "peak memory at N=1000 within 1.3x of the raw loop",
        6: "the benchmark measures the user's case (sync and async tools, peers, load)",
    }
    if result is None:
        return [Goal(number=k, title=t, figures="not run", met=None) for k, t in titles.items()]
    rows: list[dict[str, Any]] = result["rows"]
    parts: list[str] = []
    met1 = True
    for n in (100, 1000):
        raw, now, before = (
            _row(rows, c, n) for c in ("raw_aiohttp", "agentkit", "agentkit@before")
        )
        if raw is None or now is None:
            parts.append(f"N={n}: not measured")
            met1 = False
            continue
        ratio = now["cpu_ms_per_step"] / raw["cpu_ms_per_step"]
        met1 = met1 and ratio <= CPU_PER_STEP_LIMIT
        was = (
            f"{before['cpu_ms_per_step'] / raw['cpu_ms_per_step']:.2f}x -> "
            if before is not None
            else ""
        )
        parts.append(
            f"N={n}: {was}**{ratio:.2f}x** (agentkit {now['cpu_ms_per_step']:.3f} ms/step, "
            f"raw {raw['cpu_ms_per_step']:.3f})"
        )
        inline = _row(rows, "agentkit_inline", n)
        if inline is not None:
            parts.append(f"`inline=True` {inline['cpu_ms_per_step'] / raw['cpu_ms_per_step']:.2f}x")
        through = _row(rows, "agentkit_aiohttp", n)
        if through is not None:
            ratio_through = through["cpu_ms_per_step"] / raw["cpu_ms_per_step"]
            parts.append(f"`own_client=False` (through aiohttp) {ratio_through:.2f}x")
    goals = [Goal(number=1, title=titles[1], figures="; ".join(parts), met=met1)]

    raw, now, before = (_row(rows, c, 1000) for c in ("raw_aiohttp", "agentkit", "agentkit@before"))
    if raw is None or now is None:
        goals.append(Goal(number=4, title=titles[4], figures="N=1000 not measured", met=None))
    else:
        ratio = now["rss_peak_mib"] / raw["rss_peak_mib"]
        was = (
            f"{before['rss_peak_mib']:.1f} MiB ({before['rss_peak_mib'] / raw['rss_peak_mib']:.2f}x) -> "
            if before is not None
            else ""
        )
        figures = (
            f"{was}**{now['rss_peak_mib']:.1f} MiB ({ratio:.2f}x)**, raw {raw['rss_peak_mib']:.1f}"
        )
        goals.append(
            Goal(number=4, title=titles[4], figures=figures, met=ratio <= PEAK_MEMORY_LIMIT)
        )

    contenders = set(result["config"]["contenders"])
    needed = {"raw_aiohttp", "agentkit", "agentkit_async"}
    peers = sorted(contenders & {"raw_httpx", "openai_agents", "pydantic_ai"})
    has_load = (
        "load_average_before" in result["machine"] and "load_average_after" in result["machine"]
    )
    ok = needed <= contenders and has_load and not result.get("failures")
    figures = (
        f"contenders {', '.join(sorted(contenders))}; peers {', '.join(peers) or 'none'}; "
        f"load {result['machine'].get('load_average_before')} -> {result['machine'].get('load_average_after')}"
        f"; failures {len(result.get('failures') or [])}"
    )
    goals.append(Goal(number=6, title=titles[6], figures=figures, met=ok))
    return goals


def token_goal(result: dict[str, Any] | None) -> Goal:
    """Goal 2 from ``bench_token_mode.py``'s JSON (median ratio over its tries)."""
    title = "token mode within 1.2x of chat mode per step (N=100, fake server)"
    if result is None:
        return Goal(number=2, title=title, figures="not run", met=None)
    ratios = result["summary"]["tokens_over_chat"]
    per_step = result["summary"]["cpu_ms_per_step"]
    was = f"{ratios['before']:.2f}x -> " if "before" in ratios else ""
    figures = (
        f"{was}**{ratios['after']:.2f}x** (tokens {per_step['after/tokens']:.3f} ms/step, "
        f"chat {per_step['after/chat']:.3f}; median of {result['tries']} tries)"
    )
    bound = result["summary"].get("bound_over_chat")
    if bound is not None:  # beside the figure, never deciding the goal
        misses = result["summary"].get("bound_misses", 0)
        figures += (
            f"; bound with parse, encode and decode memoised: {bound:.2f}x"
            f" ({misses} memo misses in its timed runs)"
        )
    return Goal(
        number=2, title=title, figures=figures, met=ratios["after"] <= TOKENS_OVER_CHAT_LIMIT
    )


def parser_goal(result: dict[str, Any] | None) -> Goal:
    """Goal 3 from ``bench_glm45_dialect.py``'s JSON: agentkit over SGLang's parsers per group."""
    title = "GLM-4.5 parse vs SGLang's parsers: whole text 2x (small, large), streaming 5x"
    if result is None:
        return Goal(number=3, title=title, figures="not run", met=None)
    parts: list[str] = []
    met: bool | None = True
    for group in result["groups"]:
        speedups: dict[str, float] = group["speedups"].get("agentkit", {})
        sglang = next((v for k, v in speedups.items() if k.startswith("sglang")), None)
        before = next((v for k, v in speedups.items() if k.startswith("agentkit@")), None)
        if sglang is None:
            parts.append(f"{group['group']}: SGLang not measured")
            met = None
            continue
        limit = PARSE_STREAM_MIN if group["group"].startswith("streaming") else PARSE_WHOLE_MIN
        # before vs SGLang = (agentkit / SGLang) / (agentkit / before)
        was = f"{sglang / before:.2f}x -> " if before else ""
        parts.append(f"{group['group']}: {was}**{sglang:.2f}x**")
        if met is not None:
            met = met and sglang >= limit
    return Goal(number=3, title=title, figures="; ".join(parts), met=met)


def embedded_goal(result: dict[str, Any] | None, question: str) -> Goal:
    """Goal 5 from ``bench_embedded.py``'s JSON: the whole ``agentkit run`` process, empty cache,
    asked ``question``; a run that printed a wrong answer or failed fails the goal."""
    title = "embedded demo: a question within 3 s and 500 MB"
    if result is None:
        return Goal(number=5, title=title, figures="not run", met=None)
    summary: dict[str, dict[str, Any]] = result["summary"]

    def median(side: str, key: str) -> float | None:
        figure = summary.get(side, {}).get(key)
        return None if figure is None else float(figure["median"])

    wall, rss = "process, cold cache wall s", "process, cold cache peak rss mb"
    now_wall, now_rss = median("after", wall), median("after", rss)
    if now_wall is None or now_rss is None:
        return Goal(number=5, title=title, figures="process figures missing", met=None)
    ok = median("after", "process, cold cache ok")
    wrong = wrong_answers(result, question)
    was_wall, was_rss = median("before", wall), median("before", rss)
    was = f"{was_wall:.2f} s, {was_rss:.0f} MB -> " if was_wall is not None and was_rss else ""
    cached = median("after", "process, cached wall s")
    figures = f"whole process, empty cache: {was}**{now_wall:.2f} s, {now_rss:.0f} MB**"
    if cached is not None:
        figures += f"; cache filled {cached:.2f} s"
    if ok is not None and ok < 1.0:
        figures += "; SOME RUNS FAILED"
    if wrong:
        figures += f"; {wrong} WRONG ANSWER(S)"
    met = (
        now_wall <= EMBEDDED_SECONDS
        and now_rss <= EMBEDDED_MB
        and (ok is None or ok >= 1.0)
        and not wrong
    )
    return Goal(number=5, title=title, figures=figures, met=met)


def _expected_answer(question: str) -> str | None:
    """The value of the arithmetic in ``question`` (digits, + - * / and brackets only)."""
    import ast
    import re

    found = re.search(r"[0-9(][0-9+\-*/() ]*[0-9)]", question)
    if found is None:
        return None
    try:
        tree = ast.parse(found.group(0), mode="eval")
    except SyntaxError:
        return None
    allowed = (ast.Expression, ast.BinOp, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div)
    if not all(isinstance(node, allowed) for node in ast.walk(tree)):
        return None
    value = eval(compile(tree, "<question>", "eval"))  # the tree holds only numbers and + - * /
    return str(int(value)) if float(value).is_integer() else str(value)


def wrong_answers(result: dict[str, Any], question: str) -> int:
    """How many of the after-tree's whole-process runs printed an answer without the right
    number (0 when the question has no arithmetic to check)."""
    expected = _expected_answer(question)
    if expected is None:
        return 0
    runs = result["runs"]["after"]
    lines = [
        run["answer"][-1] for kind in ("process", "process_cached") for run in runs.get(kind, [])
    ]
    return sum(1 for line in lines if expected not in line)
