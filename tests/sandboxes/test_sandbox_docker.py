"""DockerSandbox against the real engine: output, limits, isolation, files."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from agentkit_sandboxes.base import Sandbox, SandboxError
from agentkit_sandboxes.docker_sandbox import DockerSandbox
from agentkit_sandboxes.engine import Engine
from tests.sandbox_support import require_docker

HERE = Path(__file__).resolve()

pytestmark = [pytest.mark.docker, pytest.mark.anyio]


async def test_runs_code_and_returns_output(sandbox: DockerSandbox) -> None:
    assert isinstance(sandbox, Sandbox)
    result = await sandbox.exec(
        ["python3", "-c", "import sys; print(6*7); print('oops', file=sys.stderr); sys.exit(3)"]
    )
    assert result.exit_code == 3
    assert result.stdout == "42\n"
    assert result.stderr == "oops\n"
    assert not result.ok
    assert "exit code: 3" in result.render()


async def test_shell_string_runs_in_workdir_as_non_root(sandbox: DockerSandbox) -> None:
    result = await sandbox.exec("pwd; id -u; id -g")
    assert result.ok
    assert result.stdout.split() == ["/work", "65534", "65534"]


async def test_timeout_kills_busy_loop_and_its_children(sandbox: DockerSandbox) -> None:
    busy = "python3 -c 'import itertools\nfor _ in itertools.count(): pass'"
    result = await sandbox.exec(f"sleep 300 & {busy}", timeout=1.5)
    assert result.timed_out
    assert result.exit_code == 137
    assert "timed out" in result.render()
    left = await sandbox.exec(
        "ps -o args | grep -c -E '^(sleep 300|python3 -c import [i]tertools)' || true"
    )
    assert left.stdout.strip() == "0"


async def test_fork_bomb_is_contained_and_reported(sandbox: DockerSandbox) -> None:
    await sandbox.write_file("keep.txt", "still here")
    bomb = "import os\nwhile True:\n    os.fork()"
    result = await sandbox.exec(["python3", "-c", bomb], timeout=20)
    assert result.pids_limit_hit
    assert "process limit" in result.render()
    after = await sandbox.exec("echo alive; ps | wc -l; cat keep.txt")
    assert after.ok, after.render()
    lines = after.stdout.split("\n")
    assert lines[0] == "alive"
    assert int(lines[1]) < 10  # the bomb's processes are gone
    if not result.restarted:
        assert lines[2] == "still here"


async def test_memory_bomb_is_killed_and_reported(sandbox: DockerSandbox) -> None:
    result = await sandbox.exec(["python3", "-c", "x = bytearray(1024**3); print('survived')"])
    assert result.exit_code == 137
    assert result.oom_killed
    assert "survived" not in result.stdout
    assert "memory limit" in result.render()
    assert (await sandbox.exec("echo ok")).stdout == "ok\n"


async def test_disk_fill_is_contained_and_reported(sandbox: DockerSandbox) -> None:
    result = await sandbox.exec("dd if=/dev/zero of=/work/fill bs=1M count=200")
    assert result.exit_code != 0
    assert result.disk_full
    assert "disk is full" in result.render()
    size = await sandbox.exec("du -m /work/fill | cut -f1")
    assert int(size.stdout) <= 64  # the work dir's size limit (TEST_CONFIG.work_size)


async def test_network_is_off_by_default(sandbox: DockerSandbox) -> None:
    code = (
        "import socket\n"
        "print(sorted(n for _, n in socket.if_nameindex()))\n"
        "s = socket.socket(); s.settimeout(3)\n"
        "try:\n    s.connect(('1.1.1.1', 80)); print('connected')\n"
        "except OSError as e:\n    print('failed', e.errno)\n"
    )
    result = await sandbox.exec(["python3", "-c", code])
    assert result.ok, result.render()
    assert result.stdout.splitlines()[0] == "['lo']"
    assert result.stdout.splitlines()[1].startswith("failed")


async def test_host_filesystem_and_docker_socket_are_not_reachable(sandbox: DockerSandbox) -> None:
    here = HERE
    probes = [
        str(here),
        "/var/run/docker.sock",
        "/run/docker.sock",
        str(here.parents[1] / "pyproject.toml"),
    ]
    result = await sandbox.exec(
        ["sh", "-c", 'for p in "$@"; do [ -e "$p" ] && echo "$p"; done; true', "sh", *probes]
    )
    assert result.ok
    assert result.stdout == ""
    root = await sandbox.exec("touch /etc/x")
    assert root.exit_code != 0
    assert "Read-only file system" in root.stderr
    caps = await sandbox.exec("grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
    assert "CapEff:\t0000000000000000" in caps.stdout
    assert "NoNewPrivs:\t1" in caps.stdout


async def test_output_is_truncated_and_says_so(sandbox: DockerSandbox) -> None:
    result = await sandbox.exec("yes 0123456789 | head -c 100000", max_output_bytes=3000)
    assert result.truncated
    assert result.stdout_bytes == 100000
    assert len(result.stdout) < 3200
    assert "bytes truncated" in result.stdout
    assert result.stdout.startswith("0123456789\n")
    assert "output was truncated" in result.render()


async def test_files_roundtrip(sandbox: DockerSandbox, tmp_path: Path) -> None:
    await sandbox.write_file("pkg/mod.py", "x = 1\n")
    await sandbox.write_file("/work/data.bin", b"\x00\x01\xff")
    assert await sandbox.read_file("pkg/mod.py") == b"x = 1\n"
    assert await sandbox.read_file("data.bin") == b"\x00\x01\xff"
    listing = await sandbox.list_files(recursive=True)
    assert [(e.path, e.kind) for e in listing] == [
        ("data.bin", "file"),
        ("pkg", "dir"),
        ("pkg/mod.py", "file"),
    ]
    assert [e.path for e in await sandbox.list_files()] == ["data.bin", "pkg"]
    with pytest.raises(FileNotFoundError):
        await sandbox.read_file("missing.txt")
    with pytest.raises(FileNotFoundError):
        await sandbox.list_files("nowhere")
    with pytest.raises(SandboxError):
        await sandbox.write_file("../etc/passwd", "x")
    # the job user can edit what the file API wrote
    assert (await sandbox.exec("echo y >> pkg/mod.py && cat pkg/mod.py")).stdout == "x = 1\ny\n"


async def test_upload_and_download_dir(sandbox: DockerSandbox, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "c.txt").write_text("deep")
    (src / "top.py").write_text("print('top')\n")
    await sandbox.upload_dir(src, "proj")
    assert (await sandbox.exec("python3 proj/top.py")).stdout == "top\n"
    await sandbox.exec("echo new > proj/a/new.txt")
    out = tmp_path / "out"
    await sandbox.download_dir("proj", out)
    assert (out / "a" / "b" / "c.txt").read_text() == "deep"
    assert (out / "a" / "new.txt").read_text() == "new\n"
    assert (out / "top.py").exists()


async def test_reset_wipes_files_and_processes(sandbox: DockerSandbox) -> None:
    await sandbox.write_file("x.txt", "x")
    await sandbox.exec("(sleep 300 &) ; echo started")
    assert await sandbox.reset()
    assert await sandbox.list_files() == []
    procs = await sandbox.exec("ps -o user,comm | grep -c -E '^nobody +sleep$' || true")
    assert procs.stdout.strip() == "0"


async def test_missing_image_is_a_clear_error(engine: Engine) -> None:
    from agentkit_sandboxes.config import SandboxConfig

    with pytest.raises(SandboxError, match="build-image"):
        await DockerSandbox.create(engine, SandboxConfig(image="agentkit/does-not-exist:1"))


async def test_direct_exec_path_without_runner(sandbox: DockerSandbox) -> None:
    """The one-exec-per-command path (images without python3) behaves alike."""
    sandbox.use_runner = False
    await sandbox._drop_runner()
    result = await sandbox.exec("echo out; echo err >&2; exit 5")
    assert (result.exit_code, result.stdout, result.stderr) == (5, "out\n", "err\n")
    slow = await sandbox.exec("sleep 300", timeout=1)
    assert slow.timed_out and slow.exit_code == 137
    big = await sandbox.exec("yes | head -c 50000", max_output_bytes=1000)
    assert big.truncated and big.stdout_bytes == 50000
    oom = await sandbox.exec(["python3", "-c", "x = bytearray(1024**3)"])
    assert oom.oom_killed and oom.exit_code == 137
    detached = await sandbox.exec("setsid sh -c 'sleep 300' & sleep 300", timeout=1)
    assert detached.timed_out and detached.killed_processes >= 2 and detached.error is None
    left = await sandbox.exec("ps -o args | grep -c -E '^sleep 300' || true")
    assert left.stdout.strip() == "0"
    bomb = await sandbox.exec(["python3", "-c", "import os\nwhile True:\n    os.fork()"])
    assert bomb.pids_limit_hit and not bomb.ok
    assert (await sandbox.exec("echo alive")).stdout == "alive\n"


async def test_concurrent_commands_in_one_sandbox(sandbox: DockerSandbox) -> None:
    results: dict[int, str] = {}

    async def one(i: int) -> None:
        results[i] = (await sandbox.exec(f"sleep 0.2; echo {i}")).stdout

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(one, i)
    assert results == {i: f"{i}\n" for i in range(5)}


async def test_commands_go_through_the_runner_and_survive_its_death(
    sandbox: DockerSandbox,
) -> None:
    await sandbox.exec("true")
    assert sandbox._runner is not None and not sandbox._runner.closed
    killed = await sandbox.exec("echo once >> count.txt; kill -9 -1")  # kills the runner too
    assert not killed.ok and killed.exit_code is None
    assert killed.error and "runner died" in killed.error
    assert (await sandbox.read_file("count.txt")) == b"once\n"  # it ran once, not re-run
    again = await sandbox.exec("echo ok")
    assert again.stdout == "ok\n"
    assert sandbox._runner is not None and not sandbox._runner.closed


async def test_cancelled_command_is_killed(sandbox: DockerSandbox) -> None:
    with anyio.move_on_after(1):
        await sandbox.exec("sleep 300")
    await anyio.sleep(0.2)
    left = await sandbox.exec("ps -o args | grep -c -E '^sleep 300' || true")
    assert left.stdout.strip() == "0"


def test_image_build_is_cached() -> None:
    from agentkit_sandboxes.image import build_image

    require_docker()  # builds the image once if it is missing
    report = build_image()
    assert not report.built
    assert report.seconds == 0.0


async def test_a_request_the_runner_cannot_run_fails_alone(sandbox: DockerSandbox) -> None:
    bad = await sandbox.exec(["true", 1])  # type: ignore[list-item]
    assert not bad.ok and bad.exit_code is None
    assert bad.error and bad.error.startswith("runner: TypeError")
    assert (await sandbox.exec("echo ok")).stdout == "ok\n"
