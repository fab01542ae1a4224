"""The figures as text (one line per contender, then the ratios) and as JSON rows."""

from __future__ import annotations

from typing import Any

from .measure import Group


def lines(group: Group) -> list[str]:
    out = []
    for name, seconds in group.seconds.items():
        rate = group.size_bytes / seconds / 1e6
        if group.chunks is None:
            speed = f"{group.completions / seconds:>10,.0f} calls/s"
        else:
            speed = f"{seconds / group.chunks * 1e6:>8.2f} us/chunk"
        out.append(f"  {name:<24} {speed} {rate:>8.1f} MB/s  ({seconds * 1e3:.1f} ms)")
    for mine, ratios in speedups(group).items():
        if ratios:
            others = ", ".join(f"{ratio:.2f}x vs {name}" for name, ratio in ratios.items())
            out.append(f"  -> {mine} speed: {others}")
    return out


def speedups(group: Group) -> dict[str, dict[str, float]]:
    """For each agentkit contender now: how many times faster it is than each other one."""
    figures = group.seconds
    ours = [name for name in figures if name.startswith("agentkit") and "@" not in name]
    return {
        mine: {name: figures[name] / figures[mine] for name in figures if name not in ours}
        for mine in ours
    }


def row(group: Group) -> dict[str, Any]:
    contenders = []
    for name, seconds in group.seconds.items():
        entry: dict[str, Any] = {
            "contender": name,
            "cpu_ms": round(seconds * 1e3, 3),
            "mb_per_s": round(group.size_bytes / seconds / 1e6, 2),
        }
        if group.chunks is None:
            entry["calls_per_s"] = round(group.completions / seconds)
        else:
            entry["us_per_chunk"] = round(seconds / group.chunks * 1e6, 3)
        contenders.append(entry)
    return {
        "group": group.label,
        "completions": group.completions,
        "size_bytes": group.size_bytes,
        "chunks": group.chunks,
        "contenders": contenders,
        "speedups": {
            mine: {name: round(ratio, 3) for name, ratio in ratios.items()}
            for mine, ratios in speedups(group).items()
        },
    }
