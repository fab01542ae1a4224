"""Several SGLang servers behind the real ``sglang-router``: one episode stays on one server.

The servers are agentkit's SGLang test server started through a stand-in ``sglang`` package
(``python -m sglang.launch_server`` runs ``python -m agentkit.testing serve`` on the same port);
the router is the real Rust binary from PyPI's ``sglang-router``. Each reply names the port of
the server that produced it.
"""

from __future__ import annotations

import importlib.util
import os
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from agentkit import Agent
from agentkit.models import SGLangChat, SGLangTokens
from agentkit.serve import ServeConfig
from agentkit.serve.fleet import SGLangFleet, plan_fleet
from agentkit.serve.router import ROUTING_KEY_HEADER

from .test_serve_process import free_port

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("sglang_router") is None,
        reason="sglang-router is not installed (pip install sglang-router)",
    ),
]

FAKE_LAUNCH_SERVER = """
import os, sys
args = sys.argv[1:]
port = args[args.index("--port") + 1]
host = args[args.index("--host") + 1]
model = args[args.index("--model-path") + 1]
os.environ["FLEET_PORT"] = port
os.execvp(sys.executable, [sys.executable, "-m", "agentkit.testing", "serve",
          "--policy", "fleet_policy:policy", "--host", host, "--port", port,
          "--model", model, "--accept-length", "0"])
"""

FLEET_POLICY = """
import os

def policy(request):
    return "<think>ok</think>\\nport=" + os.environ["FLEET_PORT"]
"""


def _install(root: Path) -> dict[str, str]:
    (root / "sglang").mkdir(parents=True)
    (root / "sglang" / "__init__.py").write_text("")
    (root / "sglang" / "launch_server.py").write_text(FAKE_LAUNCH_SERVER)
    (root / "fleet_policy.py").write_text(FLEET_POLICY)
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    # the router must never reach for a hub: it gets a local tokenizer below
    return {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}


async def test_router_keeps_each_routing_key_on_one_server(tmp_path: Path) -> None:
    from agentkit.testing import build_test_tokenizer

    # the served "model" is the test tokenizer's folder, so the router finds its tokenizer
    # locally for every worker and never reaches for a model hub
    tokenizer = build_test_tokenizer()
    model = str(tokenizer.parent)
    base = ServeConfig(model_path=model, port=free_port(), speculative=None)
    plan = plan_fleet(base, 2, tokenizer_path=str(tokenizer))
    plan = plan.model_copy(
        update={"router": plan.router.model_copy(update={"assignment_mode": "min_group"})}
    )
    seen: dict[str, set[str]] = defaultdict(set)
    log: list[str] = []
    fleet_env = _install(tmp_path)
    fleet = SGLangFleet(plan, env=fleet_env, log=log.append, ready_timeout=60)
    async with fleet, httpx.AsyncClient(base_url=fleet.base_url, timeout=30) as client:
        for turn in range(3):
            for episode in range(6):
                key = f"episode-{episode}"
                reply = await client.post(
                    "/v1/chat/completions",
                    headers={ROUTING_KEY_HEADER: key},
                    json={
                        "model": model,
                        "messages": [{"role": "user", "content": f"{key} turn {turn}"}],
                        "max_tokens": 16,
                    },
                )
                assert reply.status_code == 200, reply.text
                content = reply.json()["choices"][0]["message"]["content"]
                seen[key].add(content.strip())
        # agentkit's clients send each episode's routing key: its turns stay on one server
        for backend in (
            SGLangChat(fleet.base_url, model=model),
            SGLangTokens(fleet.base_url, tokenizer, model=model),
        ):
            async with Agent(model=backend, max_turns=2) as agent:
                for episode in range(4):
                    conv = agent.conversation()
                    first = await conv.send(f"{backend.mode} episode {episode}")
                    second = await conv.send("and again")
                    assert first.status.value == second.status.value == "completed"
                    key = f"{backend.mode}-{episode}"
                    seen[key] = {first.text.strip(), second.text.strip()}
    assert not [line for line in log if "huggingface" in line.lower()]
    assert all(len(ports) == 1 for ports in seen.values()), seen
    used = {next(iter(p)) for p in seen.values()}
    assert used == {f"port={s.port}" for s in plan.servers}
