"""Sandbox pieces that need no Docker engine: results, capture, config, owners, recipes."""

from __future__ import annotations

import os
import struct

import pytest
from pydantic import ValidationError

from agentkit_sandboxes.base import ExecResult
from agentkit_sandboxes.config import (
    LABEL_OWNER_BOOT,
    LABEL_OWNER_HOST,
    LABEL_OWNER_PID,
    LABEL_OWNER_START,
    SandboxConfig,
    owner_is_alive,
    owner_labels,
    parse_size,
)
from agentkit_sandboxes.direct_exec import Capture as _Capture
from agentkit_sandboxes.docker_sandbox import container_spec
from agentkit_sandboxes.engine import Engine, EngineUnavailable, _frames
from agentkit_sandboxes.image import DEFAULT_RECIPE, Recipe, RecipeError


def test_exec_result_render_lists_limits() -> None:
    result = ExecResult(exit_code=137, stdout="a\n", stderr="b\n", timed_out=True, oom_killed=True)
    text = result.render()
    assert text.splitlines()[0] == "exit code: 137"
    assert "timed out" in text and "memory limit" in text
    assert "stdout:\na" in text and "stderr:\nb" in text
    assert not result.ok
    assert ExecResult(exit_code=0).render() == "exit code: 0\n(no output)"
    assert ExecResult(exit_code=0).ok


def test_capture_keeps_head_and_tail() -> None:
    cap = _Capture(300)
    data = b"".join(b"%05d\n" % i for i in range(1000))
    for i in range(0, len(data), 77):
        cap.add(data[i : i + 77])
    assert cap.total == len(data)
    assert cap.truncated
    text = cap.text()
    assert text.startswith("00000\n00001\n")
    assert text.endswith("00998\n00999\n")
    assert f"[{len(data) - 300} bytes truncated]" in text


def test_capture_small_output_is_untouched() -> None:
    cap = _Capture(300)
    cap.add(b"hello ")
    cap.add("wörld".encode())
    assert not cap.truncated
    assert cap.text() == "hello wörld"


def test_a_limit_hit_or_an_error_is_never_success() -> None:
    for flags in (
        {"pids_limit_hit": True},
        {"oom_killed": True},
        {"disk_full": True},
        {"timed_out": True},
        {"restarted": True},
        {"error": "the command runner died"},
    ):
        result = ExecResult(exit_code=0, **flags)  # type: ignore[arg-type]
        assert not result.ok, flags
        lines = result.render().splitlines()
        assert lines[:2] == ["exit code: 0", "status: failed (see the notes)"], flags
        assert any(line.startswith("note: ") for line in lines), flags
    died = ExecResult(exit_code=None, error="the command runner died", killed_processes=2)
    assert "note: sandbox error: the command runner died" in died.render()
    assert "2 process(es) left in the sandbox were killed" in died.render()


def test_parse_size() -> None:
    assert parse_size("512k") == 512 * 1024
    assert parse_size("256m") == 256 * 1024**2
    assert parse_size("1g") == 1024**3
    assert parse_size("100") == 100
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_config_is_hardened_by_default() -> None:
    spec = container_spec(SandboxConfig(), {"a": "b"}, "vol")
    host = spec["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["PidsLimit"] == 128 and host["Memory"] == host["MemorySwap"]
    assert host["Init"] is True and host["Privileged"] is False
    assert not any("docker.sock" in str(m) for m in host["Mounts"])
    assert spec["User"] != "0" and not spec["User"].startswith("root")
    assert host["IpcMode"] == "private"
    assert spec["Cmd"] == ["sleep", "infinity"]


def test_egress_keeps_the_sandbox_offline() -> None:
    from agentkit_sandboxes.egress import SOCKET_DIR, EgressPolicy, proxy_spec

    policy = EgressPolicy(allow=("pypi.org",), network="upstream")
    config = SandboxConfig(egress=policy)
    spec = container_spec(config, {"a": "b"}, "vol")
    assert spec["HostConfig"]["NetworkMode"] == "none"
    assert spec["Cmd"][:3] == ["python3", "-I", "-c"]
    assert spec["Cmd"][-4:] == ["forward", "127.0.0.1", "3128", f"{SOCKET_DIR}/proxy.sock"]
    sock = [m for m in spec["HostConfig"]["Mounts"] if m["Target"] == SOCKET_DIR]
    assert sock == [
        {"Type": "volume", "Source": "vol-egress-sock", "Target": SOCKET_DIR, "ReadOnly": True}
    ]
    assert "HTTPS_PROXY=http://127.0.0.1:3128" in spec["Env"]
    proxy = proxy_spec(policy, config.image, {}, "vol-egress-sock")
    assert proxy["HostConfig"]["NetworkMode"] == "upstream"
    assert proxy["HostConfig"]["CapDrop"] == ["ALL"] and proxy["HostConfig"]["ReadonlyRootfs"]
    assert proxy["User"] == "65532:65532"


def test_config_rejects_host_network_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        SandboxConfig(network="host")
    with pytest.raises(ValidationError):
        SandboxConfig(memory="big")
    with pytest.raises(ValidationError):
        SandboxConfig(workdir="/")
    assert SandboxConfig(network="mynet").network == "mynet"


def test_owner_liveness() -> None:
    labels = owner_labels()
    assert labels[LABEL_OWNER_PID] == str(os.getpid())
    assert owner_is_alive(labels)
    assert not owner_is_alive({**labels, LABEL_OWNER_PID: "999999999"})
    assert owner_is_alive({**labels, LABEL_OWNER_HOST: "another-host", LABEL_OWNER_PID: "1"})
    assert labels[LABEL_OWNER_START] and labels[LABEL_OWNER_BOOT]
    # the same pid with another start time is a reused pid: the owner is gone
    reused = {**labels, LABEL_OWNER_START: str(int(labels[LABEL_OWNER_START]) + 1)}
    assert not owner_is_alive(reused)
    # another boot of this host: every pid of the label is from the past
    assert not owner_is_alive({**labels, LABEL_OWNER_BOOT: "00000000-0000-0000-0000-000000000000"})


def test_recipe_parse_and_digest() -> None:
    base = Recipe.parse(DEFAULT_RECIPE)
    assert "python3" in base.apt and "busybox-static" in base.apt
    extended = Recipe.parse(
        DEFAULT_RECIPE + "APT python3-numpy\nPIP 'requests==2.32.3'\nENV A=1 B=2\n"
    )
    assert extended.apt[-1] == "python3-numpy"
    assert extended.pip == ("requests==2.32.3",)
    assert extended.env["A"] == "1" and extended.env["B"] == "2"
    assert extended.digest() != base.digest()
    assert Recipe.parse(DEFAULT_RECIPE).digest() == base.digest()
    command = extended.build_command("img:tag")
    assert command.startswith("mmdebstrap ") and "| docker import" in command
    assert "--variant=extract" in command and "python3-numpy" in command
    assert "requests==2.32.3" in command and "--only-binary=:all:" in command
    assert f"agentkit.recipe={extended.digest()}" in command
    assert "busybox-static" in Recipe.parse("FROM trixie\nAPT python3\n").apt


def test_recipe_errors_name_the_line() -> None:
    with pytest.raises(RecipeError, match="line 2"):
        Recipe.parse("FROM bookworm\nRUN rm -rf /\n")
    with pytest.raises(RecipeError, match="line 1"):
        Recipe.parse("ENV NOVALUE\n")


class _FakeContent:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def readexactly(self, n: int) -> bytes:
        if len(self.data) < n:
            import asyncio

            raise asyncio.IncompleteReadError(self.data, n)
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk

    async def read(self, n: int) -> bytes:
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk


def _frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(payload)) + payload


@pytest.mark.anyio
async def test_frames_demultiplex_docker_stream() -> None:
    raw = _frame(1, b"out1") + _frame(2, b"err") + _frame(1, b"out2") + b"\x01\x00"
    got = [item async for item in _frames(_FakeContent(raw))]  # type: ignore[arg-type]
    assert got == [(1, b"out1"), (2, b"err"), (1, b"out2")]


@pytest.mark.anyio
async def test_engine_without_daemon_is_a_clear_error(tmp_path: object) -> None:
    async with Engine(socket_path="/nonexistent/docker.sock") as engine:
        assert not await engine.ping()
        with pytest.raises(EngineUnavailable, match="no Docker engine"):
            await engine.request("GET", "/_ping")
