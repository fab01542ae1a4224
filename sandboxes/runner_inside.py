"""The command runner that lives inside a sandbox container (stdlib only, python3 >= 3.8).

Started once per container with ``docker exec -i ... python3 -u -c <this file>`` as the job user,
it reads one JSON request per line on stdin and answers one JSON line per request on stdout, so a
warm command costs a pipe round trip instead of a new ``docker exec``. Each command runs in its own
session (process group); a timeout kills the whole group. Output is captured head + tail within a
byte limit. The cgroup's OOM-kill and pid-limit counters are read around each command.

Requests: ``{"id": n, "argv": [...], "cwd": "...", "env": {...}, "timeout": s, "limit": bytes}``,
``{"id": n, "ping": true}``, ``{"kill": n}``, ``{"id": n, "reset": true, "paths": [...]}`` (kill
every other process of the job user, empty the given directories).
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from typing import IO, Any

_LOCK = threading.Lock()
_PROCS: "dict[int, subprocess.Popen[bytes]]" = {}
_COUNTERS = (
    ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill", "oom"),
    ("/sys/fs/cgroup/memory.events", "oom_kill", "oom"),
    ("/sys/fs/cgroup/pids/pids.events", "max", "pids"),
    ("/sys/fs/cgroup/pids.events", "max", "pids"),
)


def _counters() -> "dict[str, int]":
    totals = {"oom": 0, "pids": 0}
    for path, key, name in _COUNTERS:
        try:
            with open(path) as handle:
                for line in handle:
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == key:
                        totals[name] += int(parts[1])
        except (OSError, ValueError):
            pass
    return totals


class _Capture:
    def __init__(self, limit: int) -> None:
        self.head_limit = limit * 2 // 3
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * self.tail_limit + 65536:
                del self.tail[: len(self.tail) - self.tail_limit]

    def result(self) -> "tuple[str, bool]":
        tail = bytes(self.tail[-self.tail_limit :]) if self.tail_limit else b""
        if self.total <= self.head_limit + self.tail_limit:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace"), False
        cut = self.total - len(self.head) - len(tail)
        text = (
            bytes(self.head).decode("utf-8", "replace")
            + f"\n...[{cut} bytes truncated]...\n"
            + tail.decode("utf-8", "replace")
        )
        return text, True


def _pump(stream: "IO[bytes]", capture: _Capture) -> None:
    try:
        while True:
            chunk = stream.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            capture.add(chunk)
    except (OSError, ValueError):
        pass


def _send(message: "dict[str, Any]") -> None:
    data = (json.dumps(message) + "\n").encode()
    with _LOCK:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def _disk_full(paths: "list[str]") -> bool:
    for path in paths:
        try:
            stat = os.statvfs(path)
        except OSError:
            continue
        if stat.f_bavail * stat.f_frsize < 64 * 1024:
            return True
    return False


def _run(request: "dict[str, Any]") -> None:
    rid = request["id"]
    before = _counters()
    out = _Capture(request.get("limit", 64000))
    err = _Capture(request.get("limit", 64000))
    env = dict(os.environ)
    env.update(request.get("env") or {})
    try:
        proc = subprocess.Popen(
            request["argv"],
            cwd=request.get("cwd") or None,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        after = _counters()
        _send(
            {
                "id": rid,
                "exit_code": 126 if isinstance(exc, PermissionError) else 127,
                "stdout": "",
                "stderr": f"{exc.filename or request['argv'][0]}: {exc.strerror or exc}\n",
                "pids": after["pids"] > before["pids"] or exc.errno == 11,
                "oom": after["oom"] > before["oom"],
            }
        )
        return
    _PROCS[rid] = proc
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    timed_out = False
    try:
        proc.wait(timeout=request.get("timeout"))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        proc.wait()
    for pump in pumps:
        pump.join(timeout=1.0)  # background children may keep the pipes open: stop waiting
    _PROCS.pop(rid, None)
    after = _counters()
    stdout, cut_out = out.result()
    stderr, cut_err = err.result()
    code = proc.returncode
    _send(
        {
            "id": rid,
            "exit_code": 137 if timed_out else (128 - code if code < 0 else code),
            "stdout": stdout,
            "stderr": stderr,
            "stdout_bytes": out.total,
            "stderr_bytes": err.total,
            "truncated": cut_out or cut_err,
            "timed_out": timed_out,
            "oom": after["oom"] > before["oom"],
            "pids": after["pids"] > before["pids"],
            "disk_full": _disk_full(request.get("disk_paths") or []),
        }
    )


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


def _reset(request: "dict[str, Any]") -> "dict[str, Any]":
    """Kill every other process of this user (kill(-1) spares the caller), empty the dirs."""
    with contextlib.suppress(OSError):
        os.kill(-1, signal.SIGKILL)
    _PROCS.clear()
    left = []
    for root in request.get("paths") or []:
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            path = os.path.join(root, name)
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except OSError:
                left.append(path)
    return {"id": request["id"], "ok": not left, "left": left}


def main() -> None:
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if "kill" in request:
            proc = _PROCS.get(request["kill"])
            if proc is not None:
                _kill_group(proc)
        elif request.get("reset"):
            _send(_reset(request))
        elif request.get("ping"):
            _send({"id": request["id"], "pong": os.getpid()})
        else:
            try:
                threading.Thread(target=_run, args=(request,), daemon=True).start()
            except RuntimeError:  # cannot start a thread: the pid limit is reached
                _send({"id": request["id"], "exit_code": None, "pids": True, "stderr": ""})
    for proc in list(_PROCS.values()):
        _kill_group(proc)


if __name__ == "__main__":
    main()
