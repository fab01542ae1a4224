"""Simulated customers for tau2 episodes, dual control included.

:class:`Tau2ModelUser` is an agentkit agent of its own (any model backend): its instructions are
the task's user scenario, its tools are the domain's user tools (the phone, in telecom), which
act on the same episode as the agent's tools. Its tool calls are made with requestor ``user``;
the agent only ever sees the user's text. :class:`GoldScriptedUser` replays the task's gold user
actions, so a whole episode with a scripted agent is deterministic.

A user ends the conversation by saying one of :data:`USER_STOP_TOKENS` (tau2's markers).
"""

from __future__ import annotations

from typing import Any, Protocol

from agentkit.agent import Agent
from agentkit.conversation import Conversation
from agentkit.models.base import Model
from agentkit.trajectory.recorder import Recorder
from agentkit.trajectory.records import EpisodeStatus

from .domain import Tau2Episode
from .tasks import GoldAction, Tau2Task

STOP = "###STOP###"
TRANSFER = "###TRANSFER###"
OUT_OF_SCOPE = "###OUT-OF-SCOPE###"
USER_STOP_TOKENS = (STOP, TRANSFER, OUT_OF_SCOPE)
GREETING = "Hi! How can I help you today?"

USER_PROMPT = """You play a customer who contacts a customer-support agent. Stay in the role of
the customer throughout; never act as the agent.

<scenario>
{scenario}
</scenario>

How to play:
- Write only the customer's next message, in your own words, one step at a time.
- Share what the scenario gives you only when it is needed or asked for; never invent facts it
  does not give.
{tools_rule}- When the scenario's goal is reached, end with {stop}.
- If the agent transfers you to a human agent, reply with {transfer} only.
- If the scenario does not cover what happens, reply with {out_of_scope} only."""

TOOLS_RULE = (
    "- You have tools that act on your own device. When the agent asks you to check or change\n"
    "  something on it, call the tool, then tell the agent what you saw. Never make up a tool's\n"
    "  result.\n"
)


class UserFailure(RuntimeError):
    """The simulated user could not answer (its model failed): an infrastructure failure."""


def is_user_stop(text: str) -> bool:
    return any(token in text for token in USER_STOP_TOKENS)


class Tau2User(Protocol):
    async def start(self, episode: Tau2Episode, greeting: str) -> str:
        """The customer's first message, answering the agent's greeting."""
        ...

    async def reply(self, episode: Tau2Episode, agent_message: str) -> str:
        """The customer's answer to the agent; may call the user tools on ``episode``."""
        ...

    async def aclose(self) -> None: ...


def user_instructions(task: Tau2Task, with_tools: bool) -> str:
    return USER_PROMPT.format(
        scenario=task.user_scenario.text(),
        tools_rule=TOOLS_RULE if with_tools else "",
        stop=STOP,
        transfer=TRANSFER,
        out_of_scope=OUT_OF_SCOPE,
    )


class Tau2ModelUser:
    """A model playing the customer, with the domain's user tools (one instance per episode).
    ``recorder`` (optional, keep it apart from the agent's) records the simulator's own
    trajectory; the agent's trajectory only ever holds the user's words."""

    def __init__(
        self,
        model: Model,
        *,
        thinking: bool = False,
        max_turns: int = 30,
        recorder: Recorder | None = None,
    ) -> None:
        self.model = model
        self.thinking = thinking
        self.max_turns = max_turns
        self.recorder = recorder
        self._agent: Agent[Tau2Episode, str] | None = None
        self._conversation: Conversation[Tau2Episode, str] | None = None

    async def start(self, episode: Tau2Episode, greeting: str) -> str:
        tools = episode.domain.user_tools()
        self._agent = Agent(
            self.model,
            instructions=user_instructions(episode.task, bool(tools)),
            tools=tools,
            max_turns=self.max_turns,
            thinking=self.thinking,
            name=f"tau2-user-{episode.domain.name}",
        )
        self._conversation = self._agent.conversation(
            deps=episode,
            recorder=self.recorder,
            task_id=f"{episode.domain.name}/{episode.task.id}",
            metadata={"role": "user_simulator"},
        )
        return await self._send(greeting)

    async def reply(self, episode: Tau2Episode, agent_message: str) -> str:
        return await self._send(agent_message)

    async def _send(self, text: str) -> str:
        if self._conversation is None:
            raise UserFailure("start() must be called before reply()")
        result = await self._conversation.send(text)
        if result.status is not EpisodeStatus.COMPLETED:
            raise UserFailure(f"user simulator: {result.status.value}: {result.error}")
        return result.text

    async def aclose(self) -> None:
        if self._conversation is not None:
            await self._conversation.finish()
        if self._agent is not None:
            await self._agent.aclose()


def action_runs(actions: list[GoldAction]) -> tuple[list[list[GoldAction]], list[list[GoldAction]]]:
    """Gold actions as alternating turns: user run 0, agent run 0, user run 1, agent run 1...
    (an empty run where one side has nothing to do; the agent always has the last turn)."""
    user_runs: list[list[GoldAction]] = [[]]
    agent_runs: list[list[GoldAction]] = []
    for action in actions:
        if action.requestor == "user":
            if len(agent_runs) == len(user_runs):
                user_runs.append([])
            user_runs[-1].append(action)
        else:
            if len(agent_runs) < len(user_runs):
                agent_runs.append([])
            agent_runs[-1].append(action)
    if len(agent_runs) < len(user_runs):
        agent_runs.append([])
    return user_runs, agent_runs


def opening_line(task: Tau2Task) -> str:
    """The scripted user's first words; they name the task so a scripted agent can find it."""
    instructions: Any = task.user_scenario.instructions
    reason = instructions.get("reason_for_call", "") if isinstance(instructions, dict) else ""
    return f"Task id: {task.id}\n{reason}".strip()


class GoldScriptedUser:
    """Plays the task's gold user actions: before each of its turns it runs its next run of user
    actions on the episode, then it says a fixed line; after the agent's last turn it stops."""

    def __init__(self) -> None:
        self._runs: list[list[GoldAction]] = []
        self._turn = 0

    def _act(self, episode: Tau2Episode) -> None:
        for action in self._runs[self._turn]:
            episode.call(action.name, action.arguments, "user")

    async def start(self, episode: Tau2Episode, greeting: str) -> str:
        self._runs, _ = action_runs(episode.task.gold_actions)
        self._turn = 0
        self._act(episode)
        return opening_line(episode.task)

    async def reply(self, episode: Tau2Episode, agent_message: str) -> str:
        self._turn += 1
        if self._turn >= len(self._runs):
            return f"Thank you, that is all. {STOP}"
        self._act(episode)
        return "I did what you asked. What next?"

    async def aclose(self) -> None:
        return None
