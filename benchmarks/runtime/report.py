"""Turn measured cells into a report: ratios to the raw aiohttp loop, a text table, JSON."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

from pydantic import BaseModel

from benchmarks.runtime.measure import Cell

BASELINE = "raw_aiohttp"
LIBRARIES = ("agentkit", "aiohttp", "httpx", "openai", "openai-agents", "pydantic-ai-slim")


class Row(BaseModel):
    """A cell plus its comparison with the raw aiohttp loop in the same (latency, N)."""

    cell: Cell
    cpu_ratio: float | None
    wall_ratio: float | None
    wall_over_ideal: float | None
    rss_peak_ratio: float | None = None
    rss_run_ratio: float | None = None


class Report(BaseModel):
    date: str
    machine: dict[str, Any]
    config: dict[str, Any]
    rows: list[Row]
    failures: list[str] = []


def rows_from_cells(cells: list[Cell]) -> list[Row]:
    base = {(c.latency_ms, c.n): c for c in cells if c.contender == BASELINE}
    rows = []
    for cell in cells:
        ref = base.get((cell.latency_ms, cell.n))
        rows.append(
            Row(
                cell=cell,
                cpu_ratio=_ratio(cell.cpu_ms_per_step, ref.cpu_ms_per_step if ref else None),
                wall_ratio=_ratio(cell.wall_s, ref.wall_s if ref else None),
                wall_over_ideal=_ratio(cell.wall_s, cell.ideal_wall_s),
                rss_peak_ratio=_ratio(cell.rss_peak_mib, ref.rss_peak_mib if ref else None),
                rss_run_ratio=_ratio(_run_mib(cell), _run_mib(ref) if ref else None),
            )
        )
    return rows


def _run_mib(cell: Cell) -> float:
    """What the timed runs added to the resident set (peak minus the set-up client's)."""
    return max(cell.rss_peak_mib - cell.rss_base_mib, 0.0)


def _ratio(value: float, reference: float | None) -> float | None:
    return value / reference if reference else None


def machine() -> dict[str, Any]:
    """What the figures were measured on (the load average matters on a shared machine)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[Row]) -> str:
    """A plain-text table, grouped by latency and N."""
    header = (
        f"{'lat ms':>6} {'N':>5} {'contender':<22} {'ok':>9} {'CPU ms/step':>11} "
        f"{'x aiohttp':>9} {'wall s':>8} {'x aiohttp':>9} {'ideal s':>7} {'x ideal':>7} {'GC %':>5} "
        f"{'peak MiB':>8} {'x aiohttp':>9} {'run MiB':>7} {'x aiohttp':>9} {'load':>5}"
    )
    lines = [header, "-" * len(header)]
    for row in sorted(rows, key=lambda r: (r.cell.latency_ms, r.cell.n)):
        c = row.cell
        lines.append(
            f"{c.latency_ms:>6g} {c.n:>5} {c.contender:<22} {f'{c.runs_ok}/{c.n}':>9} "
            f"{c.cpu_ms_per_step:>11.3f} {_fmt(row.cpu_ratio, '.2f'):>9} {c.wall_s:>8.3f} "
            f"{_fmt(row.wall_ratio, '.2f'):>9} {c.ideal_wall_s:>7.2f} "
            f"{_fmt(row.wall_over_ideal, '.2f'):>7} {c.gc_share * 100:>5.1f} "
            f"{c.rss_peak_mib:>8.1f} {_fmt(row.rss_peak_ratio, '.2f'):>9} {_run_mib(c):>7.1f} "
            f"{_fmt(row.rss_run_ratio, '.2f'):>9} {c.load_average[0] if c.load_average else 0:>5.2f}"
        )
    return "\n".join(lines)
