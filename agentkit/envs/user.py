"""Simulated customers.

A user simulator opens the conversation from the task's instruction and answers each message
of the agent; it ends the conversation by saying :data:`STOP` (tau-bench's marker, matched as a
substring). :class:`ModelUser` lets any agentkit model backend play the customer, with the roles
flipped as in tau-bench (the agent's words are the simulator's "user" turns); :class:`ScriptedUser`
replays fixed lines for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agentkit.agent import Agent
from agentkit.conversation import Conversation
from agentkit.models.base import Model
from agentkit.trajectory.records import EpisodeStatus

STOP = "###STOP###"
OPENING = "Hi! How can I help you today?"

USER_PROMPT = """You play a customer talking to a customer-support agent.

Your situation and goal:
{instruction}

How to play:
- Write only the customer's next message: one short line, in your own words.
- Reveal what you know step by step, only when it is needed or asked for.
- Never invent facts the situation does not give (ids, numbers, names): say you do not know or
  do not have them.
- Keep the personality described above; sound like a real person.
- When your goal is reached, or cannot be reached, reply with exactly {stop} and nothing else."""


class UserError(RuntimeError):
    """The simulated user could not answer (its model failed): an infrastructure failure."""


class UserSimulator(Protocol):
    async def reset(self, instruction: str) -> str:
        """Start a conversation; return the customer's first message."""
        ...

    async def step(self, agent_message: str) -> str:
        """The customer's answer to what the agent just said."""
        ...


class ScriptedUser:
    """Says ``lines`` in order, then :data:`STOP`."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        self.heard: list[str] = []
        self._next = 0

    def _say(self) -> str:
        if self._next >= len(self.lines):
            return STOP
        line = self.lines[self._next]
        self._next += 1
        return line

    async def reset(self, instruction: str) -> str:
        self._next = 0
        self.heard = []
        return self._say()

    async def step(self, agent_message: str) -> str:
        self.heard.append(agent_message)
        return self._say()


class ModelUser:
    """A model playing the customer; ``model`` is any agentkit backend (chat or token mode)."""

    def __init__(
        self, model: Model, *, thinking: bool = False, prompt: str = USER_PROMPT, max_turns: int = 1
    ) -> None:
        self.model = model
        self.thinking = thinking
        self.prompt = prompt
        self.max_turns = max_turns
        self._conversation: Conversation[None, str] | None = None

    async def reset(self, instruction: str) -> str:
        agent: Agent[None, str] = Agent(
            self.model,
            instructions=self.prompt.format(instruction=instruction, stop=STOP),
            max_turns=self.max_turns,
            thinking=self.thinking,
            name="user-simulator",
        )
        self._conversation = agent.conversation()
        return await self._send(OPENING)

    async def step(self, agent_message: str) -> str:
        return await self._send(agent_message)

    async def _send(self, text: str) -> str:
        conversation = self._conversation
        if conversation is None:
            raise UserError("reset() must be called before step()")
        result = await conversation.send(text)
        if result.status is not EpisodeStatus.COMPLETED:
            raise UserError(f"user simulator failed: {result.status.value}: {result.error}")
        return result.text
