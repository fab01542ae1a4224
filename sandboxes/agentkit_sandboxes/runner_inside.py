"""The command runner that lives inside a sandbox container (stdlib only, python3 >= 3.8).

Started once per container with ``docker exec -i ... python3 -I -c <this file>`` as the job user,
it reads one JSON request per line on stdin and answers one JSON line per request on stdout, so a
warm command costs a pipe round trip instead of a new ``docker exec``.

The result channel is out of the commands' reach by construction: before reading anything the
runner makes itself non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``), so the kernel refuses every
other process of the same uid ``/proc/<runner>/fd``, ``environ``, ``mem`` and ptrace; a command
can kill or stop the runner (the host then reports that command as failed and starts a new
runner) but cannot write into its stdout or read its stdin. The runner refuses to start when that
protection cannot be set.

Each command runs in its own session. A timeout, or a pid-limit hit, kills every process of the
job uid but the runner itself (``kill(-1, SIGKILL)`` until ``/proc`` shows none), whatever the
command did to detach; the answer says how many were killed and whether any survived.

Requests: ``{"id": n, "argv": [...], "cwd": "...", "env": {...}, "timeout": s, "limit": bytes}``,
``{"id": n, "ping": true}``, ``{"kill": n}`` (kill a command's session), ``{"id": n, "killall":
true}``, ``{"id": n, "reset": true, "paths": [...]}`` (kill every other job process, empty the
directories, drop SysV IPC objects, then verify all of it).
"""

import contextlib
import ctypes
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

if "Capture" not in globals():  # on the host; in the container exec_shared's source comes first
    from agentkit_sandboxes.exec_shared import COUNTER_FILES, Capture, tally_counters

_PR_SET_DUMPABLE, _PR_GET_DUMPABLE = 4, 3
_IPC_RMID = 0
_LOCK = threading.Lock()
_PROCS: "dict[int, subprocess.Popen[bytes]]" = {}
_LIBC = ctypes.CDLL(None, use_errno=True)


def _protect() -> None:
    """Make this process non-dumpable; exit if the kernel does not confirm it."""
    _LIBC.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    if _LIBC.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) != 0:
        sys.stderr.write("agentkit runner: cannot make itself non-dumpable\n")
        sys.exit(3)


def _counters() -> "dict[str, int]":
    files = {}
    for path, _key, _name in COUNTER_FILES:
        try:
            with open(path) as handle:
                files[path] = handle.read().splitlines()
        except OSError:
            pass
    return tally_counters(files)


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


# --- processes -------------------------------------------------------------------------------


def _job_processes() -> "list[int]":
    """Live (non-zombie) processes of this uid, except the runner itself."""
    me, uid, found = os.getpid(), os.getuid(), []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        state = fields.get("State", "").split()
        real_uid = fields.get("Uid", "").split()
        if real_uid and int(real_uid[0]) == uid and state and state[0] not in ("Z", "X"):
            found.append(int(name))
    return found


def _kill_all() -> "dict[str, int]":
    """SIGKILL every process of this uid but the runner, until none is left (2 s at most)."""
    killed = len(_job_processes())
    deadline = time.monotonic() + 2.0
    left = killed
    while left:
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)  # every process we may signal, except ourselves
        time.sleep(0.005)
        left = len(_job_processes())
        if time.monotonic() > deadline:
            break
    return {"killed": killed, "left": left}


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


# --- one command -----------------------------------------------------------------------------


def _pump(proc: "subprocess.Popen[bytes]", out: Capture, err: Capture, timeout: float) -> bool:
    """Read both pipes until they close; True if the timeout passed first. Once the process has
    exited, background children that keep the pipes open get one more second."""
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    captures = {}
    for pipe, capture in ((proc.stdout, out), (proc.stderr, err)):
        if pipe is not None:
            sel.register(pipe, selectors.EVENT_READ)
            captures[pipe.fileno()] = (pipe, capture)
    pidfd = -1
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(proc.pid)
        sel.register(pidfd, selectors.EVENT_READ)
    exited_at = None
    try:
        while captures:
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
                if pidfd >= 0:
                    sel.unregister(pidfd)
            if exited_at is not None and now - exited_at > 1.0:
                break
            if exited_at is None and now >= deadline:
                return True
            wait = (deadline - now) if exited_at is None else 1.0 - (now - exited_at)
            if pidfd < 0:
                wait = min(wait, 0.01)
            for key, _ in sel.select(max(wait, 0.0)):
                if key.fd == pidfd:
                    continue
                pipe, capture = captures[key.fd]
                chunk = os.read(key.fd, 65536)
                if chunk:
                    capture.add(chunk)
                else:
                    sel.unregister(pipe)
                    del captures[key.fd]
        return False
    finally:
        sel.close()
        if pidfd >= 0:
            os.close(pidfd)


def _run(request: "dict[str, Any]") -> None:
    """Run one command and answer; any failure of the runner itself is answered too."""
    try:
        _run_command(request)
    except Exception as exc:  # a bad request or a runner bug: that command fails, with why
        _send({"id": request.get("id"), "exit_code": None, "error": f"runner: {exc!r}"})


def _run_command(request: "dict[str, Any]") -> None:
    rid = request["id"]
    before = _counters()
    out = Capture(request.get("limit", 64000))
    err = Capture(request.get("limit", 64000))
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
        pids = after["pids"] > before["pids"] or exc.errno == 11
        _send(
            {
                "id": rid,
                "exit_code": 126 if isinstance(exc, PermissionError) else 127,
                "stdout": "",
                "stderr": f"{exc.filename or request['argv'][0]}: {exc.strerror or exc}\n",
                "pids": pids,
                "oom": after["oom"] > before["oom"],
                **(_kill_all() if pids else {}),
            }
        )
        return
    _PROCS[rid] = proc
    timeout = request.get("timeout") or 1e9
    deadline = time.monotonic() + timeout
    timed_out = _pump(proc, out, err, timeout)
    if not timed_out:  # the pipes closed; the process may still run (it closed its output)
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            timed_out = True
    kills: dict[str, int] = {}
    if timed_out:
        kills = _kill_all()  # the command's group and whatever detached from it
    proc.wait()
    _PROCS.pop(rid, None)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    after = _counters()
    pids = after["pids"] > before["pids"]
    if pids and not kills:
        kills = _kill_all()
    stdout, stderr = out.text(), err.text()
    code = proc.returncode
    _send(
        {
            "id": rid,
            "exit_code": 137 if timed_out else (128 - code if code < 0 else code),
            "stdout": stdout,
            "stderr": stderr,
            "stdout_bytes": out.total,
            "stderr_bytes": err.total,
            "truncated": out.truncated or err.truncated,
            "timed_out": timed_out,
            "oom": after["oom"] > before["oom"],
            "pids": pids,
            "disk_full": _disk_full(request.get("disk_paths") or []),
            **kills,
        }
    )


# --- reset between leases --------------------------------------------------------------------


def _empty_dir(root: str, left: "list[str]") -> None:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return
    except OSError:
        left.append(root)
        return
    for name in names:
        path = os.path.join(root, name)
        try:
            _remove(path)
        except OSError:
            with contextlib.suppress(OSError):
                _make_writable(path)
                _remove(path)
    with contextlib.suppress(OSError):
        left.extend(os.path.join(root, name) for name in os.listdir(root))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _make_writable(path: str) -> None:
    """chmod u+rwx every directory under ``path`` (a command may have made them read-only)."""
    if os.path.islink(path) or not os.path.isdir(path):
        return
    os.chmod(path, 0o700)
    for dirpath, dirnames, _files in os.walk(path):
        for name in dirnames:
            sub = os.path.join(dirpath, name)
            if not os.path.islink(sub):
                with contextlib.suppress(OSError):
                    os.chmod(sub, 0o700)


def _sysv_ipc(remove: bool) -> "list[str]":
    """SysV shared memory, message queues and semaphores of this uid (removed if asked)."""
    found = []
    uid = os.getuid()
    for kind, fn in (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl")):
        try:
            with open(f"/proc/sysvipc/{kind}") as handle:
                rows = [line.split() for line in handle.readlines()[1:]]
        except OSError:
            continue
        for row in rows:
            if len(row) < 2 or not row[1].isdigit():
                continue
            owner_col = {"shm": 7, "msg": 7, "sem": 4}[kind]
            if len(row) > owner_col and row[owner_col] == str(uid):
                found.append(f"{kind}:{row[1]}")
                if remove:
                    if kind == "sem":
                        _LIBC.semctl(int(row[1]), 0, _IPC_RMID)
                    else:
                        getattr(_LIBC, fn)(int(row[1]), _IPC_RMID, None)
    return found


def _reset(request: "dict[str, Any]") -> "dict[str, Any]":
    """Kill every other process of this uid, empty the dirs, drop IPC objects, verify."""
    kills = _kill_all()
    _PROCS.clear()
    left: list[str] = []
    for root in request.get("paths") or []:
        _empty_dir(root, left)
    _sysv_ipc(remove=True)
    ipc_left = _sysv_ipc(remove=False)
    procs_left = len(_job_processes())
    ok = not left and not ipc_left and procs_left == 0 and kills["left"] == 0
    return {
        "id": request["id"],
        "ok": ok,
        "left": left + ipc_left,
        "killed": kills["killed"],
        "procs_left": procs_left,
    }


def _handle(request: "dict[str, Any]") -> None:
    if "kill" in request:
        proc = _PROCS.get(request["kill"])
        if proc is not None:
            _kill_group(proc)
    elif request.get("reset"):
        _send(_reset(request))
    elif request.get("killall"):
        _send({"id": request["id"], **_kill_all()})
    elif request.get("ping"):
        _send({"id": request["id"], "pong": os.getpid()})
    else:
        try:
            threading.Thread(target=_run, args=(request,), daemon=True).start()
        except RuntimeError:  # cannot start a thread: the pid limit is reached
            _send({"id": request["id"], "exit_code": None, "pids": True, **_kill_all()})


def main() -> None:
    _protect()
    os.chdir("/")
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if isinstance(request, dict):
            _handle(request)
    for proc in list(_PROCS.values()):
        _kill_group(proc)


if __name__ == "__main__":
    main()
