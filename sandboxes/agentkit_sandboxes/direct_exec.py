"""Commands through one ``docker exec`` each: the path for images without python3 (no runner).

Nothing the command prints decides its result: the exit code comes from the engine
(``exec_inspect``), and the cgroup's OOM-kill and pid-limit counters are read before and after by
separate execs as the keeper user, whose processes the job user cannot touch. A timeout kills
every process of the job user (``kill_job_processes``) and checks that none is left.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio

from .base import ExecResult
from .config import SandboxConfig
from .engine import Engine, EngineError
from .exec_shared import COUNTER_FILES, Capture, tally_counters

# As the job user: SIGKILL every process of this uid but the shell itself until /proc shows
# none (builtins only, so it works at the pid limit once the shell runs); prints "killed left".
KILL_SCRIPT = r"""
me=$$
count() {
  n=0
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$me" ] && continue
    [ -O "$d" ] || continue
    st=
    while read -r k v _; do [ "$k" = State: ] && st=$v && break; done < "$d/status" 2>/dev/null
    [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ] || n=$((n + 1))
  done
}
count; first=$n; i=0
while [ "$n" -gt 0 ] && [ $i -lt 200 ]; do kill -9 -1 2>/dev/null; count; i=$((i + 1)); done
echo "$first $n"
"""
_DISK_FULL_MARKERS = ("No space left on device", "[Errno 28]")


async def run_exec(
    engine: Engine,
    cid: str,
    argv: list[str],
    *,
    user: str,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> tuple[int | None, bytes, str]:
    """Run one short helper command to its end: (exit code, stdout, stderr)."""
    eid = await engine.exec_create(cid, argv, user=user, workdir="/")
    out, err = bytearray(), bytearray()
    with anyio.fail_after(timeout):
        async with engine.exec_stream(eid) as frames:
            async for stream, chunk in frames:
                (err if stream == 2 else out).extend(chunk)
    info = await engine.exec_inspect(eid)
    code = info.get("ExitCode")
    return (int(code) if code is not None else None), bytes(out), err.decode("utf-8", "replace")


async def kill_job_processes(engine: Engine, cid: str, user: str) -> tuple[int, int]:
    """SIGKILL every process of the job user: (how many there were, how many are left)."""
    code, out, _err = await run_exec(engine, cid, ["/bin/sh", "-c", KILL_SCRIPT], user=user)
    fields = out.decode("ascii", "replace").split()
    if code != 0 or len(fields) != 2 or not all(f.isdigit() for f in fields):
        raise EngineError(500, f"the kill script failed (exit {code}): {out[-200:]!r}")
    return int(fields[0]), int(fields[1])


async def read_counters(engine: Engine, cid: str, keeper: str) -> dict[str, int] | None:
    """The cgroup's OOM-kill and pid-limit counters, read as the keeper user with shell builtins
    only (it must work when the job user holds every pid); None when they could not be read."""
    paths = [path for path, _, _ in COUNTER_FILES]
    script = (
        'for f in "$@"; do echo "== $f"; [ -r "$f" ] || continue; '
        'while read -r k v; do echo "$k $v"; done < "$f"; done; echo "== end"'
    )
    try:
        _code, out, _err = await run_exec(
            engine, cid, ["/bin/sh", "-c", script, "sh", *paths], user=keeper, timeout=15
        )
    except (EngineError, TimeoutError, OSError):
        return None
    text = out.decode("utf-8", "replace")
    if not text.rstrip().endswith("== end"):
        return None
    files: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("== "):
            lines = files.setdefault(line[3:], [])
        else:
            lines.append(line)
    return tally_counters(files)


async def _counters_after(
    engine: Engine, cid: str, config: SandboxConfig
) -> tuple[dict[str, int] | None, tuple[int, int] | None]:
    """Counters after a command; when they cannot be read (every pid taken, most likely), kill
    every job process first and read again. Returns (counters, (killed, left) if it killed)."""
    after = await read_counters(engine, cid, config.keeper_user)
    if after is not None:
        return after, None
    kills = await _kill_retrying(engine, cid, config.job_user)
    return await read_counters(engine, cid, config.keeper_user), kills


async def _kill_retrying(engine: Engine, cid: str, user: str) -> tuple[int, int] | None:
    """``kill_job_processes``, tried three times (its exec needs a free pid); None if it failed."""
    for attempt in range(3):
        try:
            return await kill_job_processes(engine, cid, user)
        except (EngineError, TimeoutError, OSError):
            await anyio.sleep(0.1 * (attempt + 1))
    return None


async def disk_full(engine: Engine, cid: str, config: SandboxConfig) -> bool:
    script = f"df -P {config.workdir} /tmp | tail -n +2"
    try:
        _code, out, _err = await run_exec(
            engine, cid, ["/bin/sh", "-c", script], user=config.keeper_user, timeout=15
        )
    except (EngineError, TimeoutError, OSError):
        return True  # the markers said so and it cannot be checked: believe them
    for line in out.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3] in ("0", "1", "2", "3", "4"):
            return True
    return False


async def exec_direct(
    engine: Engine,
    cid: str,
    config: SandboxConfig,
    argv: Sequence[str],
    *,
    timeout: float,  # noqa: ASYNC109
    limit: int,
    cwd: str,
    env: dict[str, str],
    counters: dict[str, int] | None = None,
) -> ExecResult:
    """One ``docker exec`` for this command; the engine reports its exit code. ``counters``
    carries the cgroup counters from one command to the next (read once after each command;
    counts are monotonic), so a command costs two execs instead of three."""
    started = time.perf_counter()
    before = dict(counters) if counters else await read_counters(engine, cid, config.keeper_user)
    out, err = Capture(limit), Capture(limit)
    exit_code: int | None = 137
    error = None
    with anyio.move_on_after(timeout) as scope:
        try:
            eid = await engine.exec_create(
                cid, list(argv), user=config.job_user, workdir=cwd, env=env
            )
            async with engine.exec_stream(eid) as frames:
                async for stream, chunk in frames:
                    (err if stream == 2 else out).add(chunk)
            code = (await engine.exec_inspect(eid)).get("ExitCode")
            exit_code = int(code) if code is not None else None
        except EngineError as exc:  # could not even start (the pid limit, a vanished dir...)
            exit_code, error = None, f"the command could not be started: {exc.message}"
    timed_out = scope.cancelled_caught
    if timed_out:
        exit_code = 137
    after, kills = await _counters_after(engine, cid, config)
    if counters is not None:
        counters.clear()
        counters.update(after or {})
    if after is None or before is None:
        error = error or "the sandbox's limit counters could not be read"
    pids = after is not None and before is not None and after["pids"] > before["pids"]
    oom = after is not None and before is not None and after["oom"] > before["oom"]
    if (timed_out or pids) and kills is None:
        kills = await _kill_retrying(engine, cid, config.job_user)
        if kills is None:
            error = "could not kill the command's processes"
    killed, left = kills or (0, 0)
    if left:
        error = f"{left} process(es) of the command survived SIGKILL"
    combined = out.text() + err.text()
    full = any(m in combined for m in _DISK_FULL_MARKERS) and await disk_full(engine, cid, config)
    return ExecResult(
        exit_code=exit_code,
        stdout=out.text(),
        stderr=err.text(),
        timed_out=timed_out,
        truncated=out.truncated or err.truncated,
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        oom_killed=oom,
        pids_limit_hit=pids,
        disk_full=full,
        killed_processes=killed,
        error=error,
        duration_s=time.perf_counter() - started,
    )
