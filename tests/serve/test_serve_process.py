"""SGLangServer against a fake ``sglang.launch_server`` module written into a temp dir on PYTHONPATH.

The fake parses the flags it needs, starts a helper child process (as SGLang starts scheduler
processes), records both pids, and serves ``/health_generate`` and ``/model_info`` on the given
port. ``FAKE_SGLANG_MODE`` selects a behaviour: ``ok``, ``slow`` (503 for a while), ``die``
(prints and exits 3 before serving), ``ignore-term`` (ignores SIGTERM, so only SIGKILL stops it),
``stuck`` (503 forever), ``no-health`` (404 on ``/health_generate``), ``crash-later`` (serves, then exits 4), ``agent``
(serves ``agentkit.testing.SGLangTestServer`` with the policy named by ``FAKE_SGLANG_POLICY``).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

FAKE_LAUNCH_SERVER = r"""
import argparse, asyncio, json, os, signal, subprocess, sys, time

from aiohttp import web

parser = argparse.ArgumentParser()
parser.add_argument("--model-path", required=True)
parser.add_argument("--served-model-name")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=30000)
parser.add_argument("--tool-call-parser")
parser.add_argument("--reasoning-parser")
args, rest = parser.parse_known_args()

mode = os.environ.get("FAKE_SGLANG_MODE", "ok")
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(os.environ["FAKE_SGLANG_PIDS"], "w") as f:
    json.dump([os.getpid(), child.pid], f)
print(f"fake sglang: model {args.model_path} parsers {args.tool_call_parser}/{args.reasoning_parser}", flush=True)
print("fake sglang: extra " + " ".join(rest), flush=True)
if mode == "agent":
    # Serve agentkit's protocol-faithful SGLang test server with a scripted policy instead.
    from agentkit.testing import SGLangTestServer
    from agentkit.testing.cli import load_policy

    server = SGLangTestServer(
        load_policy(os.environ["FAKE_SGLANG_POLICY"]),
        host=args.host,
        port=args.port,
        model=args.served_model_name or args.model_path,
    )
    asyncio.run(server.serve(lambda url: print(f"fake sglang: test server at {url}", flush=True)))
    sys.exit(0)
if mode == "die":
    print("fake sglang: CUDA error: out of memory (simulated)", flush=True)
    child.kill()
    sys.exit(3)

started = time.monotonic()


async def health(request):
    if mode == "no-health":
        raise web.HTTPNotFound()
    if mode == "stuck" or (mode == "slow" and time.monotonic() - started < 1.0):
        return web.Response(status=503, text="loading")
    return web.Response(text="")


async def model_info(request):
    return web.json_response({
        "model_path": args.model_path,
        "served_model_name": args.served_model_name or args.model_path,
        "tool_call_parser": args.tool_call_parser,
        "reasoning_parser": args.reasoning_parser,
        "is_generation": True,
    })


async def main():
    app = web.Application()
    app.router.add_get("/health_generate", health)
    app.router.add_get("/model_info", model_info)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    print(f"fake sglang: listening on {args.host}:{args.port}", flush=True)
    if mode == "crash-later":
        await asyncio.sleep(0.5)
        print("fake sglang: scheduler died (simulated)", flush=True)
        os._exit(4)
    await asyncio.Event().wait()


asyncio.run(main())
"""


def install_fake_sglang(root: Path) -> Path:
    """Write the fake ``sglang`` package under ``root``; returns the dir to put on PYTHONPATH."""
    package = root / "sglang"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "launch_server.py").write_text(FAKE_LAUNCH_SERVER)
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def wait_gone(pids: list[int], within: float = 10.0) -> list[int]:
    """Poll until all ``pids`` are gone (bounded); returns the ones still alive."""
    deadline = time.monotonic() + within
    alive = [p for p in pids if process_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if process_alive(p)]
    return alive


def fake_env(root: Path, pid_file: Path, mode: str = "ok") -> dict[str, str]:
    pythonpath = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": pythonpath, "FAKE_SGLANG_MODE": mode, "FAKE_SGLANG_PIDS": str(pid_file)}


# -- tests --------------------------------------------------------------------------------------

import json  # noqa: E402

import anyio  # noqa: E402
import httpx  # noqa: E402
import pytest  # noqa: E402

from agentkit.serve import ServeConfig, SGLangServer, SGLangServerError  # noqa: E402


def _config(port: int, extra_args: tuple[str, ...] = ()) -> ServeConfig:
    return ServeConfig.for_model("glm-4.5-air", tp_size=1, port=port, extra_args=extra_args)


@pytest.fixture
def fake(tmp_path: Path) -> tuple[Path, Path]:
    return install_fake_sglang(tmp_path / "fake"), tmp_path / "pids.json"


def _pids(pid_file: Path) -> list[int]:
    pids: list[int] = json.loads(pid_file.read_text())
    return pids


@pytest.mark.anyio
async def test_server_starts_serves_and_leaves_no_process(fake: tuple[Path, Path]) -> None:
    root, pid_file = fake
    lines: list[str] = []
    config = _config(free_port(), extra_args=("--enable-metrics",))
    async with SGLangServer(
        config, env=fake_env(root, pid_file, "slow"), log=lines.append
    ) as server:
        pids = _pids(pid_file)
        assert all(process_alive(p) for p in pids)
        assert server.ready_path == "/health_generate"
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            info = (await client.get("/model_info")).json()
        assert info["model_path"] == "zai-org/GLM-4.5-Air"
        assert info["tool_call_parser"] == "glm45"
        assert info["reasoning_parser"] == "glm45"
        server.check()
    assert wait_gone(pids) == []
    assert server.returncode is not None
    assert any("--speculative-algorithm EAGLE" in line for line in lines)
    assert all("--disable-shared-experts-fusion" not in line for line in lines)
    assert any("--enable-metrics" in line for line in lines)


@pytest.mark.anyio
async def test_death_before_ready_reports_the_last_log_lines(fake: tuple[Path, Path]) -> None:
    root, pid_file = fake
    server = SGLangServer(_config(free_port()), env=fake_env(root, pid_file, "die"), log=None)
    with pytest.raises(SGLangServerError) as info:
        async with server:
            pytest.fail("the body must not run when the server died")
    assert "out of memory (simulated)" in str(info.value)
    assert info.value.returncode == 3
    assert wait_gone(_pids(pid_file)) == []


@pytest.mark.anyio
async def test_death_while_in_use_is_raised_on_exit(fake: tuple[Path, Path]) -> None:
    root, pid_file = fake
    server = SGLangServer(
        _config(free_port()), env=fake_env(root, pid_file, "crash-later"), log=None
    )
    checked: list[str] = []

    async def use_until_it_dies() -> None:
        async with server:
            await server.wait_exited()
            try:
                server.check()
            except SGLangServerError as exc:
                checked.append(str(exc))

    with pytest.raises(SGLangServerError) as info:
        await use_until_it_dies()
    assert checked
    assert "scheduler died (simulated)" in str(info.value)
    assert info.value.returncode == 4
    assert wait_gone(_pids(pid_file)) == []


@pytest.mark.anyio
async def test_process_group_ignoring_sigterm_is_killed(fake: tuple[Path, Path]) -> None:
    root, pid_file = fake
    env = fake_env(root, pid_file, "ignore-term")
    async with SGLangServer(_config(free_port()), env=env, log=None, stop_timeout=0.5):
        pids = _pids(pid_file)
    assert wait_gone(pids) == []


@pytest.mark.anyio
async def test_cancellation_stops_the_server(fake: tuple[Path, Path]) -> None:
    root, pid_file = fake
    ready = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def serve() -> None:
            async with SGLangServer(_config(free_port()), env=fake_env(root, pid_file), log=None):
                ready.set()
                await anyio.sleep_forever()

        tg.start_soon(serve)
        await ready.wait()
        pids = _pids(pid_file)
        tg.cancel_scope.cancel()
    assert wait_gone(pids) == []


@pytest.mark.anyio
async def test_falls_back_to_model_info_without_health_generate(fake: tuple[Path, Path]) -> None:
    root, pid_file = fake
    env = fake_env(root, pid_file, "no-health")
    async with SGLangServer(_config(free_port()), env=env, log=None) as server:
        assert server.ready_path == "/model_info"
    assert wait_gone(_pids(pid_file)) == []


@pytest.mark.anyio
async def test_not_ready_in_time_fails_and_cleans_up(fake: tuple[Path, Path]) -> None:
    root, pid_file = fake
    env = fake_env(root, pid_file, "stuck")
    server = SGLangServer(_config(free_port()), env=env, log=None, ready_timeout=5.0)
    with pytest.raises(SGLangServerError, match="not ready after"):
        await server.start()
    assert wait_gone(_pids(pid_file)) == []


POLICY = """
COMPLETIONS = [
    "<think>look it up</think>\\n<tool_call>get_weather\\n<arg_key>city</arg_key>\\n"
    "<arg_value>Paris</arg_value>\\n</tool_call>",
    "<think>done</think>\\nIt is sunny in Paris.",
]
"""


@pytest.mark.anyio
async def test_agent_runs_against_the_launched_server(fake: tuple[Path, Path]) -> None:
    from agentkit import Agent, tool
    from agentkit.models import SGLangChat

    root, pid_file = fake
    (root / "serve_policy.py").write_text(POLICY)
    env = {**fake_env(root, pid_file, "agent"), "FAKE_SGLANG_POLICY": "serve_policy:COMPLETIONS"}
    seen: list[str] = []

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        seen.append(city)
        return "sunny, 24C"

    async with SGLangServer(_config(free_port()), env=env, log=None) as server:
        pids = _pids(pid_file) if pid_file.exists() else []
        model = SGLangChat(server.base_url)
        try:
            agent: Agent[None, str] = Agent(
                model=model, instructions="Answer briefly.", tools=[get_weather]
            )
            result = await agent.run("Weather in Paris?")
        finally:
            await model.aclose()
    assert seen == ["Paris"]
    assert result.status == "completed"
    assert result.output == "It is sunny in Paris."
    assert wait_gone(pids) == []
