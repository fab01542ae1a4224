"""A run loads only what it uses: ``import agentkit`` and running an agent (with a recorder,
chat and token mode) never load the trajectory exports, the Parquet store or pyarrow.

Each check runs in a fresh interpreter, so modules other tests loaded do not hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from agentkit.testing import build_test_tokenizer

HEAVY = ("agentkit.trajectory.exports", "agentkit.trajectory.parquet", "pyarrow")

RUN_AGENT = textwrap.dedent(
    """
    import json, sys

    import anyio

    from agentkit import Agent, tool
    from agentkit.models import SGLangChat
    from agentkit.models.sglang_tokens import SGLangTokens
    from agentkit.testing import SGLangTestServer
    from agentkit.trajectory.recorder import MemoryRecorder


    @tool
    def get_weather(city: str) -> str:
        '''Weather for a city.

        Args:
            city: City name.
        '''
        return "sunny in " + city


    CALL = (
        "<think>look</think>\\n<tool_call>get_weather\\n<arg_key>city</arg_key>\\n"
        "<arg_value>Paris</arg_value>\\n</tool_call>"
    )
    ANSWER = "<think>done</think>\\nSunny."


    async def main(tokenizer_path: str) -> dict[str, object]:
        out: dict[str, object] = {}
        for mode in ("chat", "tokens"):
            async with SGLangTestServer(policy=[CALL, ANSWER]) as server:
                model = (
                    SGLangChat(server.base_url)
                    if mode == "chat"
                    else SGLangTokens(server.base_url, tokenizer_path)
                )
                recorder = MemoryRecorder()
                agent = Agent(model=model, tools=[get_weather], recorder=recorder)
                async with agent:
                    result = await agent.run("Weather in Paris?")
                out[mode] = {"output": result.output, "records": len(recorder.items)}
        return out


    tokenizer_path = sys.argv[1]
    summary = anyio.run(main, tokenizer_path)
    print(json.dumps({"summary": summary, "modules": sorted(sys.modules)}))
    """
)


def _run(code: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_import_agentkit_loads_no_export_or_parquet_module() -> None:
    code = "import json, sys, agentkit; print(json.dumps({'modules': sorted(sys.modules)}))"
    modules = _run(code)["modules"]
    assert "agentkit" in modules
    assert _heavy(modules) == []


def test_running_an_agent_loads_no_export_or_parquet_module(tmp_path: Path) -> None:
    tokenizer = build_test_tokenizer(tmp_path)
    result = _run(RUN_AGENT, str(tokenizer))
    for mode in ("chat", "tokens"):
        assert result["summary"][mode]["output"] == "Sunny."
        # start, two model calls, the tool step and the end were recorded
        assert result["summary"][mode]["records"] >= 5
    assert "agentkit.trajectory.records" in result["modules"]
    assert _heavy(result["modules"]) == []


def test_the_lazy_names_still_resolve() -> None:
    code = (
        "import json, sys, agentkit.trajectory as t; names = sorted(t.__all__); "
        "missing = [n for n in names if getattr(t, n, None) is None]; "
        "print(json.dumps({'missing': missing, 'dir': sorted(set(names) - set(dir(t))), "
        "'modules': sorted(sys.modules)}))"
    )
    result = _run(code)
    assert result["missing"] == []
    assert result["dir"] == []
    assert "agentkit.trajectory.exports" in result["modules"]  # loaded on first use


HTTP = ("aiohttp", "httpx", "agentkit.models.transport", "agentkit.models.sglang_chat")


def test_import_agentkit_and_its_cli_loads_no_http_client() -> None:
    # what `agentkit run` on the embedded model imports before it starts the model
    code = (
        "import json, sys, agentkit, agentkit.models, agentkit.cli as cli, "
        "agentkit.models.embedded_chat; "
        "print(json.dumps({'modules': sorted(sys.modules), "
        "'run_mounts': cli.needs_subcommands(['run', 'What is 2 + 2?']), "
        "'help_mounts': cli.needs_subcommands(['--help']), "
        "'bare_mounts': cli.needs_subcommands([]), "
        "'group_mounts': cli.needs_subcommands(['testing', 'serve'])}))"
    )
    result = _run(code)
    loaded = [m for m in result["modules"] if any(m == h or m.startswith(h + ".") for h in HTTP)]
    assert loaded == []
    assert result["run_mounts"] is False
    assert result["help_mounts"] is result["bare_mounts"] is result["group_mounts"] is True


def test_the_lazy_model_names_resolve_and_are_listed() -> None:
    # dir() first: a name that resolved once is cached in the module and listed anyway
    code = (
        "import json, agentkit, agentkit.models as m; "
        "print(json.dumps({'unlisted': sorted(set(agentkit.__all__) - set(dir(agentkit))) "
        "+ sorted(set(m.__all__) - set(dir(m))), "
        "'missing': [n for n in (*agentkit.__all__, 'EmbeddedChat') "
        "if getattr(agentkit, n, None) is None] + [n for n in m.__all__ "
        "if getattr(m, n, None) is None], "
        "'same': agentkit.SGLangChat is m.SGLangChat and agentkit.RetryPolicy is m.RetryPolicy}))"
    )
    result = _run(code)
    assert result["missing"] == []
    assert result["unlisted"] == []
    assert result["same"] is True
