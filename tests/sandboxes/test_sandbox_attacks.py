"""Attacks on the Docker sandbox from the inside, through the public pool API (real engine).

Each test plays one attack a reward-hacking agent could try and asserts three things: it is
contained, the result it gets is honest (never a plain success when a limit or an error was hit,
never another command's result), and the pool still hands out a clean, working sandbox.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator

import anyio
import pytest

from agentkit_sandboxes import docker_sandbox, runner
from agentkit_sandboxes.config import LABEL, LABEL_OWNER_START, owner_labels
from agentkit_sandboxes.docker_sandbox import DockerSandbox, reap_orphans
from agentkit_sandboxes.engine import Engine
from agentkit_sandboxes.pool import SandboxPool
from tests.sandbox_support import TEST_CONFIG

pytestmark = [pytest.mark.docker, pytest.mark.anyio]

# Other live processes of the job uid, minus this one and its parent (the runner).
OTHER_PROCS = r"""
import os
me, parent, uid, n = os.getpid(), os.getppid(), os.getuid(), 0
for pid in filter(str.isdigit, os.listdir('/proc')):
    if int(pid) in (me, parent):
        continue
    try:
        status = dict(l.split(':', 1) for l in open(f'/proc/{pid}/status') if ':' in l)
    except OSError:
        continue
    if int(status['Uid'].split()[0]) == uid and status['State'].split()[0] not in 'ZX':
        n += 1
print(n)
"""

# Tries to forge replies on every descriptor of every other process, and to read or trace them.
FORGE = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
fake = "".join(json.dumps({"id": i, "exit_code": 0, "stdout": "FORGED: 12 passed\n"}) + "\n"
               for i in range(1, 400))
opened = denied = 0
for pid in filter(str.isdigit, os.listdir('/proc')):
    if int(pid) == os.getpid():
        continue
    for fd in ('0', '1', '2'):
        try:
            with open(f'/proc/{pid}/fd/{fd}', 'w') as handle:
                handle.write(fake)
            opened += 1
        except OSError:
            denied += 1
    for name in ('environ', 'mem'):
        try:
            open(f'/proc/{pid}/{name}', 'rb').read(1)
            opened += 1
        except OSError:
            denied += 1
    if libc.ptrace(16, int(pid), None, None) == 0:  # PTRACE_ATTACH
        opened += 1
print('opened', opened, 'denied', denied)
raise SystemExit(3)
"""

# Leaves something behind in every writable place, and processes that detached.
LEAVE_TRACES = r"""
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
for path in ('/work/w.txt', '/tmp/t.txt', '/dev/shm/s.txt', '/tmp/.hidden'):
    open(path, 'w').write('lease A')
os.makedirs('/tmp/ro/sub'); open('/tmp/ro/sub/f', 'w').close(); os.chmod('/tmp/ro', 0o500)
assert libc.mq_open(b'/leak', os.O_CREAT | os.O_RDWR, 0o600, None) >= 0
assert libc.shmget(0x1234, 4096, 0o1000 | 0o600) >= 0
assert libc.msgget(0x1235, 0o1000 | 0o600) >= 0
assert libc.semget(0x1236, 1, 0o1000 | 0o600) >= 0
subprocess.Popen(['setsid', 'sleep', '301'])
if os.fork() == 0:  # double fork into a new session
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', '302'])
    os._exit(0)
print('left traces')
"""

CHECK_CLEAN = r"""
ls -A /work /tmp /dev/shm /dev/mqueue | grep -v ':$' | grep -c . || true
cat /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem | grep -c -v key || true
echo "secret=${LEASE_SECRET:-none}"
"""


@pytest.fixture(name="pool")
async def pool_fixture(engine: Engine) -> AsyncIterator[SandboxPool]:
    async with SandboxPool(TEST_CONFIG, size=1, engine=engine) as pool:
        yield pool


async def other_procs(box: DockerSandbox) -> int:
    result = await box.exec(["python3", "-c", OTHER_PROCS])
    assert result.ok, result.render()
    return int(result.stdout)


async def assert_pool_usable(pool: SandboxPool) -> None:
    """The next lease works and starts clean: no files, IPC objects or processes left."""
    async with pool.sandbox() as box:
        result = await box.exec(CHECK_CLEAN)
        assert result.ok, result.render()
        assert result.stdout.split() == ["0", "0", "secret=none"], result.stdout
        assert await other_procs(box) == 0
        assert (await box.exec("echo ok")).stdout == "ok\n"


# --- the result channel --------------------------------------------------------------------


async def test_commands_cannot_forge_results(pool: SandboxPool) -> None:
    async with pool.sandbox() as box:
        forged = await box.exec(["python3", "-c", FORGE])
        assert forged.exit_code == 3, forged.render()
        assert "FORGED" not in forged.stdout
        assert forged.stdout.startswith("opened 0 denied ")
        for i in range(3):  # later commands get their own results, not the planted ones
            later = await box.exec(f"echo real {i}")
            assert (later.exit_code, later.stdout) == (0, f"real {i}\n")
    await assert_pool_usable(pool)


FAKE_RUNNERS = {
    "not json": "print('this is not json {', flush=True)",
    "unknown id": "print(json.dumps({'id': 999999, 'exit_code': 0}), flush=True)",
    "wrong types": "print(json.dumps({'id': req['id'], 'exit_code': 'zero'}), flush=True)",
    "dies": "sys.exit(0)",
}


@pytest.mark.parametrize("answer", sorted(FAKE_RUNNERS))
async def test_garbage_on_the_channel_fails_only_that_command(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    """Whatever the runner's channel carries, exec returns a failed result, never raises."""
    fake = (
        "import json, sys\n"
        "for line in sys.stdin:\n"
        "    req = json.loads(line)\n"
        "    if req.get('ping'):\n"
        "        print(json.dumps({'id': req['id'], 'pong': 1}), flush=True)\n"
        "    else:\n"
        f"        {FAKE_RUNNERS[answer]}\n"
    )
    monkeypatch.setattr(runner, "RUNNER_SOURCE", fake)
    box = await DockerSandbox.create(engine, TEST_CONFIG)
    try:
        bad = await box.exec("echo hi")
        assert not bad.ok and bad.exit_code is None
        assert bad.error and "runner" in bad.error
        monkeypatch.undo()  # the next runner is the real one again
        good = await box.exec("echo hi")
        assert (good.exit_code, good.stdout, good.error) == (0, "hi\n", None)
    finally:
        await box.destroy()


async def test_a_command_that_kills_the_runner_runs_once(pool: SandboxPool) -> None:
    async with pool.sandbox() as box:
        killer = await box.exec("echo once >> /work/count; sleep 300 & kill -9 -1")
        assert not killer.ok and killer.exit_code is None
        assert killer.error and "runner died" in killer.error
        assert await box.read_file("count") == b"once\n"
        assert await other_procs(box) == 0
        assert (await box.exec("echo after")).stdout == "after\n"
    await assert_pool_usable(pool)


async def test_a_stopped_runner_fails_the_command_and_is_replaced(pool: SandboxPool) -> None:
    async with pool.sandbox() as box:
        stopped = await box.exec("kill -STOP $PPID; sleep 300", timeout=1)
        assert not stopped.ok and stopped.timed_out
        assert stopped.error and "stopped answering" in stopped.error
        assert (await box.exec("echo after")).stdout == "after\n"
        assert await other_procs(box) == 0
    await assert_pool_usable(pool)


# --- leases, timeouts, limits --------------------------------------------------------------


async def test_leases_share_nothing(pool: SandboxPool) -> None:
    async with pool.sandbox() as first:
        left = await first.exec(["python3", "-c", LEAVE_TRACES], env={"LEASE_SECRET": "A"})
        assert left.ok, left.render()
        assert await other_procs(first) >= 2
        first_id = first.container_id
    async with pool.sandbox() as second:
        assert second.container_id == first_id  # the same warm container, reset
        result = await second.exec(CHECK_CLEAN)
        assert result.stdout.split() == ["0", "0", "secret=none"], result.stdout
        assert await other_procs(second) == 0
    assert pool.replaced == 0


async def test_a_reset_that_cannot_be_proven_replaces_the_container(
    pool: SandboxPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with pool.sandbox() as box:
        first_id = box.container_id
        await box.exec("echo x > /work/x")
        # /etc is on the read-only root: emptying it fails, so the reset cannot be proven
        monkeypatch.setattr(docker_sandbox, "RESET_PATHS", ("/tmp", "/etc"))
    async with pool.sandbox() as again:
        assert again.container_id != first_id
        assert pool.replaced == 1
        assert await again.list_files() == []
    monkeypatch.undo()
    await assert_pool_usable(pool)


async def test_timeout_kills_detached_processes(pool: SandboxPool) -> None:
    spinner = "python3 -c 'import os, time\nif os.fork() == 0:\n os.setsid()\n while 1: pass'"
    async with pool.sandbox() as box:
        result = await box.exec(
            f"setsid sh -c 'while :; do :; done' & (trap '' HUP; exec sleep 300) & {spinner}; "
            "sleep 300",
            timeout=1.5,
        )
        assert result.timed_out and result.exit_code == 137 and not result.ok
        assert result.killed_processes >= 4, result.render()
        assert result.error is None
        assert "timed out" in result.render() and "were killed" in result.render()
        assert await other_procs(box) == 0
    await assert_pool_usable(pool)


async def test_timeout_holds_when_the_command_closes_its_output(pool: SandboxPool) -> None:
    async with pool.sandbox() as box:
        result = await box.exec("exec >/dev/null 2>&1 </dev/null; sleep 300", timeout=1)
        assert result.timed_out and not result.ok and result.error is None, result.render()
        assert await other_procs(box) == 0
    await assert_pool_usable(pool)


async def test_fork_bomb_is_never_a_success(pool: SandboxPool) -> None:
    async with pool.sandbox() as box:
        bomb = await box.exec("f() { f | f & }; f; exit 0", timeout=20)
        assert bomb.pids_limit_hit and not bomb.ok, bomb.render()
        assert "status: failed" in bomb.render() or bomb.exit_code != 0
        assert await other_procs(box) == 0
    await assert_pool_usable(pool)


async def test_memory_bomb_is_never_a_success(pool: SandboxPool) -> None:
    async with pool.sandbox() as box:
        # the victim is a child; the shell itself exits 0
        result = await box.exec("python3 -c 'x = bytearray(1 << 30)'; exit 0")
        assert result.oom_killed and not result.ok, result.render()
    await assert_pool_usable(pool)


async def test_disk_fill_is_never_a_success(pool: SandboxPool) -> None:
    async with pool.sandbox() as box:
        result = await box.exec("dd if=/dev/zero of=/work/fill bs=1M count=200 2>/dev/null; true")
        assert result.exit_code == 0 and result.disk_full and not result.ok
        assert "status: failed" in result.render()
    await assert_pool_usable(pool)


async def test_cpu_bomb_is_limited_and_killed(pool: SandboxPool) -> None:
    async with pool.sandbox() as box:
        quota = await box.exec(
            "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max 2>/dev/null; true"
        )
        assert quota.stdout.split()[0] == "100000"  # 1 CPU (cgroup v1 quota or v2 cpu.max)
        spin = "for i in 1 2 3 4; do (while :; do :; done) & done; wait"
        result = await box.exec(spin, timeout=1.5)
        assert result.timed_out and result.killed_processes >= 4 and not result.ok
        assert await other_procs(box) == 0
    await assert_pool_usable(pool)


async def test_output_bomb_is_truncated(pool: SandboxPool) -> None:
    async with pool.sandbox() as box:
        result = await box.exec("yes 0123456789 | head -c 20000000", max_output_bytes=4096)
        assert result.truncated and result.stdout_bytes == 20_000_000
        assert len(result.stdout) < 4200 and "bytes truncated" in result.stdout
    await assert_pool_usable(pool)


# --- what held already: privileges, mounts, namespaces, network ----------------------------


async def test_no_capabilities_and_no_way_to_gain_them(pool: SandboxPool) -> None:
    async with pool.sandbox() as box:
        status = await box.exec(
            "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs)' /proc/self/status"
        )
        lines = status.stdout.splitlines()
        assert all(line.endswith("0000000000000000") for line in lines if line.startswith("Cap"))
        assert "NoNewPrivs:\t1" in lines
        setuid = await box.exec(["python3", "-c", "import os; os.setuid(0)"])
        assert setuid.exit_code != 0 and "PermissionError" in setuid.stderr
    await assert_pool_usable(pool)


async def test_mounts_and_docker_socket_are_out_of_reach(pool: SandboxPool) -> None:
    probes = ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd", os.getcwd()]
    async with pool.sandbox() as box:
        seen = await box.exec(
            ["sh", "-c", 'for p in "$@"; do [ -e "$p" ] && echo "$p"; done; true', "sh", *probes]
        )
        assert seen.ok and seen.stdout == ""
        for command in (
            "touch /etc/x",
            "echo 1 > /proc/sys/kernel/panic",
            "mount -t tmpfs none /work",
            "mkdir /sys/fs/cgroup/x",
        ):
            result = await box.exec(command)
            assert result.exit_code != 0, command
    await assert_pool_usable(pool)


async def test_no_new_namespaces(pool: SandboxPool) -> None:
    code = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "for flag in (0x10000000, 0x20000000, 0x40000000, 0x00020000):\n"
        "    print(libc.unshare(flag))\n"
    )
    async with pool.sandbox() as box:
        result = await box.exec(["python3", "-c", code])
        assert result.stdout.split() == ["-1"] * 4, result.render()
        assert (await box.exec("unshare -U -r true")).exit_code != 0
    await assert_pool_usable(pool)


async def test_no_network_by_default(pool: SandboxPool) -> None:
    code = (
        "import socket\nprint(sorted(n for _, n in socket.if_nameindex()))\n"
        "s = socket.socket(); s.settimeout(2)\n"
        "try:\n    s.connect(('192.0.2.1', 80)); print('connected')\n"
        "except OSError as e:\n    print('failed')\n"
        "try:\n    socket.getaddrinfo('example.com', 80); print('resolved')\n"
        "except OSError:\n    print('no dns')\n"
    )
    async with pool.sandbox() as box:
        result = await box.exec(["python3", "-c", code])
        assert result.stdout.split("\n")[:3] == ["['lo']", "failed", "no dns"], result.render()
    await assert_pool_usable(pool)


# --- orphans -------------------------------------------------------------------------------

CHILD = r"""
import anyio, sys, time
from agentkit_sandboxes import DockerSandbox, SandboxConfig
from agentkit_sandboxes.engine import Engine

async def main():
    async with Engine() as engine:
        box = await DockerSandbox.create(engine, SandboxConfig(memory="64m", work_size="8m"))
        print(box.container_id, flush=True)
        await anyio.sleep(600)

anyio.run(main)
"""


async def _container_of_killed_child() -> str:
    async with await anyio.open_process([sys.executable, "-c", CHILD]) as child:
        assert child.stdout is not None
        line = b""
        with anyio.fail_after(60):
            while not line.endswith(b"\n"):
                line += await child.stdout.receive()
        child.send_signal(signal.SIGKILL)
        await child.wait()
    return line.decode().strip()


async def _ids(engine: Engine) -> set[str]:
    return {str(c["Id"]) for c in await engine.containers_with_label(f"{LABEL}=1")}


async def test_a_sigkilled_owner_is_reaped_at_pool_start(engine: Engine) -> None:
    orphan = await _container_of_killed_child()
    try:
        assert orphan in await _ids(engine)
        async with SandboxPool(TEST_CONFIG, size=1, engine=engine) as pool:
            assert pool.reaped >= 1
            assert orphan not in await _ids(engine)
    finally:
        await engine.container_remove(orphan)


async def test_reap_tells_a_reused_pid_from_a_live_owner(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = await DockerSandbox.create(engine, TEST_CONFIG)
    # our own (live) pid, but another start time: the pid of a dead owner, reused
    stale = {**owner_labels(), LABEL_OWNER_START: "1"}
    monkeypatch.setattr(docker_sandbox, "owner_labels", lambda: stale)
    reused = await DockerSandbox.create(engine, TEST_CONFIG)
    monkeypatch.undo()
    try:
        assert await reap_orphans(engine) >= 1
        ids = await _ids(engine)
        assert reused.container_id not in ids
        assert live.container_id in ids
    finally:
        await reused.destroy()
        await live.destroy()


def test_reap_command_line() -> None:
    """``agentkit sandbox reap`` runs and reports a count (the engine must answer)."""
    from typer.testing import CliRunner

    from agentkit_sandboxes.cli import app
    from tests.sandbox_support import require_docker

    require_docker()
    result = CliRunner().invoke(app, ["reap"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("removed ") and "container(s)" in result.output
