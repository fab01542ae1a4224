"""agentkit's pytest plugin, run the way a user runs it: pytest on a small test file of theirs."""

from __future__ import annotations

import importlib.metadata as md

import pytest

USER_TESTS = """
import pytest

from agentkit import Agent
from agentkit.demo import calculator

CALL = (
    "<think>use the tool</think>\\n<tool_call>calculator\\n<arg_key>expression</arg_key>\\n"
    "<arg_value>6 * 7</arg_value>\\n</tool_call>"
)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_tool_call_then_answer(scripted_model, mode):
    model = scripted_model([CALL, "<think>done</think>\\nIt is 42."], mode=mode)
    async with Agent(model=model, tools=[calculator]) as agent:
        result = await agent.run("What is 6 * 7?")
    assert result.status.value == "completed", result.error
    assert result.output == "It is 42."
    assert result.usage.tool_calls == 1
    assert len(scripted_model.server.generation_requests()) == 2


@pytest.mark.anyio
async def test_default_policy_is_the_demo_calculator(scripted_model):
    async with Agent(model=scripted_model(), tools=[calculator]) as agent:
        result = await agent.run("What is (17 + 25) * 3?")
    assert "126" in result.output


def test_bare_server_in_a_sync_test(sglang_test_server):
    import httpx

    server = sglang_test_server(["<think>x</think>\\nHi"])
    assert httpx.get(server.base_url + "/health", timeout=10).status_code == 200
    server.fail_next(1, status=503)
    reply = httpx.post(server.base_url + "/v1/chat/completions", json={"messages": []}, timeout=10)
    assert reply.status_code == 503


@pytest.mark.anyio
async def test_a_wrong_expectation_fails(scripted_model):
    async with Agent(model=scripted_model(["<think>x</think>\\nNo idea."])) as agent:
        result = await agent.run("What is 6 * 7?")
    assert result.output == "42"
"""


USER_CONFTEST = """
import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param
"""


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    points = {ep.name: ep.value for ep in md.entry_points(group="pytest11")}
    assert points.get("agentkit") == "agentkit.testing.pytest_plugin"


def test_a_user_test_file_gets_a_server_and_a_scripted_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user_agent=USER_TESTS)
    pytester.makeconftest(USER_CONFTEST)
    # A subprocess, as a user runs it: the plugin is loaded from its entry point, not from here.
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(passed=7, failed=2)  # async tests under asyncio and trio
    result.stdout.fnmatch_lines(["*test_a_wrong_expectation_fails*"])
    assert "Unclosed client session" not in result.stdout.str() + result.stderr.str()


def test_servers_are_stopped_when_the_test_ends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_stops="""
        import httpx
        import pytest

        URLS = []

        def test_start(sglang_test_server):
            URLS.append(sglang_test_server().base_url)
            assert httpx.get(URLS[0] + "/health", timeout=10).status_code == 200

        def test_gone_afterwards():
            with pytest.raises(httpx.ConnectError):
                httpx.get(URLS[0] + "/health", timeout=10)

        def test_server_before_any_model(scripted_model):
            with pytest.raises(LookupError):
                scripted_model.server
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=3)
