"""The contenders of the runtime benchmark: one agent run each, against the fake chat server.

Every contender does the same work per run: send the conversation, and while the reply holds a
call of the ``lookup`` tool, run that trivial tool and send its result back; stop at the final
text. ``tool_calls`` counts the tool executions so a run can be checked, not just timed.

The tool is a plain sync ``def`` (what a user writes first) for every contender but
``agentkit_async``, which measures the ``async def`` path. A raw loop calls it directly; the
frameworks and agentkit run it their own way (agentkit: a worker thread by default, on the
event loop in ``agentkit_inline``, which declares the tool ``@tool(inline=True)``).
``agentkit_jsonl`` also writes every record to a :class:`~agentkit.trajectory.store.JsonlStore`
with its default fsync policy; ``agentkit`` builds the records in memory (its default).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from benchmarks.runtime.fake_server import FINAL_TEXT, TOOL_NAME

INSTRUCTIONS = "You look things up with the lookup tool, then answer briefly."
PROMPT = "Look up the five keys, then say you are done."
LOOKUP_SCHEMA: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "Look up the value stored under a key.",
        "parameters": {
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
        },
    },
}


class Contender(ABC):
    """One way to run the agent loop. ``setup`` once, ``run_one`` many times concurrently."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self.tool_calls = 0

    def lookup(self, key: str) -> str:
        """Look up the value stored under a key."""
        self.tool_calls += 1
        return f"value of {key}"

    async def lookup_async(self, key: str) -> str:
        """Look up the value stored under a key."""
        self.tool_calls += 1
        return f"value of {key}"

    @abstractmethod
    async def setup(self, base_url: str, concurrency: int, max_turns: int) -> None: ...

    @abstractmethod
    async def run_one(self) -> bool:
        """One agent run; True when it ended with the expected final answer."""

    async def aclose(self) -> None:
        return None

    def notes(self) -> dict[str, Any]:
        """Facts about how the runs went, for the report (e.g. where the tool ran)."""
        return {}


class _RawLoop(Contender):
    """A hand-written loop over OpenAI chat messages; subclasses only post JSON."""

    def _start(self, base_url: str, max_turns: int) -> None:
        self.url = f"{base_url}/v1/chat/completions"
        self.max_turns = max_turns

    @abstractmethod
    async def post(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def run_one(self) -> bool:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": PROMPT},
        ]
        for _ in range(self.max_turns):
            body = {"model": "fake", "messages": messages, "tools": [LOOKUP_SCHEMA]}
            reply = await self.post(body)
            message = reply["choices"][0]["message"]
            messages.append(message)
            calls = message.get("tool_calls") or []
            if not calls:
                return bool(message.get("content") == FINAL_TEXT)
            for call in calls:
                arguments = json.loads(call["function"]["arguments"])
                output = self.lookup(**arguments)
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": output})
        return False


class RawAiohttp(_RawLoop):
    name = "raw_aiohttp"

    async def setup(self, base_url: str, concurrency: int, max_turns: int) -> None:
        import aiohttp

        self._start(base_url, max_turns)
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(self.url, json=body) as resp:
            resp.raise_for_status()
            data: dict[str, Any] = await resp.json()
            return data

    async def aclose(self) -> None:
        await self.session.close()


def tuned_httpx_client(concurrency: int) -> Any:
    """An httpx client whose pool keeps one connection per concurrent run alive.

    The defaults of the OpenAI SDK (100 kept-alive connections, 5 s connect timeout) make 1,000
    concurrent runs reconnect constantly and time out on a 2-core machine, so the frameworks get
    this pool too: the comparison is then about the agent loop, not pool defaults.
    """
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, timeout=120.0)


class RawHttpx(_RawLoop):
    """httpx with its pool sized to the concurrency, so no request waits for a connection."""

    name = "raw_httpx"

    async def setup(self, base_url: str, concurrency: int, max_turns: int) -> None:
        self._start(base_url, max_turns)
        self.client = tuned_httpx_client(concurrency)

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.client.post(
            self.url, content=json.dumps(body), headers={"content-type": "application/json"}
        )
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    async def aclose(self) -> None:
        await self.client.aclose()


class AgentkitChat(Contender):
    """agentkit's ``Agent`` with the chat-mode ``SGLangChat`` backend (its own transport) and a
    plain sync ``def`` tool: the defaults a user gets."""

    name = "agentkit"
    use_async_tool = False
    write_store = False
    inline: bool | None = None  # None: the default of the agentkit under test
    own_client: bool | None = None  # None: the transport's default HTTP client

    async def setup(self, base_url: str, concurrency: int, max_turns: int) -> None:
        from agentkit import Agent, tool
        from agentkit.models import SGLangChat

        recorder: Any = None
        if self.write_store:
            import tempfile

            from agentkit.trajectory.store import JsonlStore

            self.tmp = tempfile.TemporaryDirectory(prefix="bench-runtime-")
            recorder = self.store = JsonlStore(f"{self.tmp.name}/records.jsonl")
        if self.own_client is None:
            model = SGLangChat(base_url, model="fake")
        else:
            from agentkit.models.transport import Transport

            transport = Transport(own_client=self.own_client)
            model = SGLangChat(base_url, model="fake", transport=transport)
        self.agent: Any = Agent(
            model=model,
            instructions=INSTRUCTIONS,
            tools=[self._tool(tool)],
            max_turns=max_turns,
            recorder=recorder,
        )

    def _tool(self, make: Any) -> Any:
        if self.use_async_tool:
            return make(name=TOOL_NAME)(self.lookup_async)
        if self.inline is None:
            return make(name=TOOL_NAME)(self.lookup)
        return make(name=TOOL_NAME, inline=self.inline)(self.lookup)

    async def run_one(self) -> bool:
        result = await self.agent.run(PROMPT)
        return bool(result.status.value == "completed" and result.output == FINAL_TEXT)

    def notes(self) -> dict[str, Any]:
        caller = getattr(self.agent.tools[0], "_sync", None)  # None: async, or older agentkit
        if caller is None:
            return {}
        return {
            "tool_calls_inline": caller.calls_inline,
            "tool_calls_threaded": caller.calls_threaded,
        }

    async def aclose(self) -> None:
        await self.agent.aclose()
        if self.write_store:
            self.store.close()
            self.tmp.cleanup()


class AgentkitAsyncTool(AgentkitChat):
    """agentkit with an ``async def`` tool (no worker thread can be involved)."""

    name = "agentkit_async"
    use_async_tool = True


class AgentkitInline(AgentkitChat):
    """agentkit with the sync tool declared quick: ``@tool(inline=True)`` (no worker thread)."""

    name = "agentkit_inline"
    inline = True


class AgentkitAiohttp(AgentkitChat):
    """agentkit with its JSON posts through aiohttp (``Transport(own_client=False)``) instead
    of the transport's own HTTP/1.1 client: what the own client saves."""

    name = "agentkit_aiohttp"
    own_client = False


class AgentkitJsonl(AgentkitChat):
    """agentkit with the sync tool and every record appended to a ``JsonlStore``."""

    name = "agentkit_jsonl"
    write_store = True


class OpenAIAgents(Contender):
    """openai-agents with ``OpenAIChatCompletionsModel`` (``AsyncOpenAI`` on the tuned httpx pool)."""

    name = "openai_agents"

    async def setup(self, base_url: str, concurrency: int, max_turns: int) -> None:
        from agents import Agent, OpenAIChatCompletionsModel, function_tool, set_tracing_disabled
        from openai import AsyncOpenAI

        set_tracing_disabled(True)
        self.http = tuned_httpx_client(concurrency)
        self.client = AsyncOpenAI(
            base_url=f"{base_url}/v1", api_key="dummy", http_client=self.http, max_retries=0
        )
        model = OpenAIChatCompletionsModel(model="fake", openai_client=self.client)
        self.agent: Any = Agent(
            name="bench",
            instructions=INSTRUCTIONS,
            tools=[function_tool(self.lookup)],
            model=model,
        )
        self.max_turns = max_turns

    async def run_one(self) -> bool:
        from agents import Runner

        result = await Runner.run(self.agent, PROMPT, max_turns=self.max_turns)
        return bool(result.final_output == FINAL_TEXT)

    async def aclose(self) -> None:
        await self.client.close()
        await self.http.aclose()


class PydanticAI(Contender):
    """pydantic-ai with ``OpenAIChatModel`` (``AsyncOpenAI`` on the tuned httpx pool)."""

    name = "pydantic_ai"

    async def setup(self, base_url: str, concurrency: int, max_turns: int) -> None:
        from openai import AsyncOpenAI
        from pydantic_ai import Agent
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        self.http = tuned_httpx_client(concurrency)
        client = AsyncOpenAI(
            base_url=f"{base_url}/v1", api_key="dummy", http_client=self.http, max_retries=0
        )
        self.provider = OpenAIProvider(openai_client=client)
        model = OpenAIChatModel("fake", provider=self.provider)
        self.agent: Any = Agent(model, instructions=INSTRUCTIONS, tools=[self.lookup])

    async def run_one(self) -> bool:
        result = await self.agent.run(PROMPT)
        return bool(result.output == FINAL_TEXT)

    async def aclose(self) -> None:
        await self.provider.client.close()
        await self.http.aclose()


CONTENDERS: dict[str, type[Contender]] = {
    c.name: c
    for c in (
        AgentkitChat,
        AgentkitAsyncTool,
        AgentkitInline,
        AgentkitAiohttp,
        AgentkitJsonl,
        RawAiohttp,
        RawHttpx,
        OpenAIAgents,
        PydanticAI,
    )
}
