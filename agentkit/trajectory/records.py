"""The trajectory record: what a run did, token-exact where the backend allows.

Raw first, derived second: each model call keeps the exact ``input_ids`` sent and ``output_ids``
received with their log-probs (token mode), and each environment step keeps the call, its outcome
and the token ids the runtime appended for it. Training rows are derived from these later
(:mod:`agentkit.trajectory.rows`), never by decoding and re-encoding text.

Every record is one JSON line in the store; ``kind`` tells them apart.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agentkit.messages import SharedFieldsSet as SharedFieldsSet
from agentkit.messages import SharesFieldsSet, ToolCall
from agentkit.messages import share_fields_set as share_fields_set
from agentkit.trajectory.packed import RaggedInts, RoutedExperts

SCHEMA_VERSION = 1

M = TypeVar("M", bound=BaseModel)


class _Shape:
    """How :func:`trusted` builds a model of one class given one tuple of field names: the
    defaults of every field in order (a placeholder where a factory gives it or it is
    required), the factories of the fields not given, and the fields set (shared by every
    model of this shape when the class allows it, else copied for each)."""

    __slots__ = ("defaults", "factories", "fields_set", "shared")

    def __init__(self, cls: type[BaseModel], names: tuple[str, ...]) -> None:
        if (
            cls.__private_attributes__
            or cls.model_config.get("extra") == "allow"
            or cls.__new__ is not object.__new__
        ):
            raise TypeError(
                f"{cls.__name__} needs validated construction (private or extra attributes, or its own __new__)"
            )
        fields = cls.model_fields
        given = set(names)
        required = {name for name, f in fields.items() if f.is_required()}
        if not required <= given <= fields.keys():
            missing, unknown = sorted(required - given), sorted(given - fields.keys())
            raise TypeError(f"{cls.__name__}: fields missing {missing}, unknown {unknown}")
        self.defaults: dict[str, Any] = {name: f.default for name, f in fields.items()}
        self.factories: tuple[tuple[str, Callable[[], Any]], ...] = tuple(
            (name, f.default_factory)  # type: ignore[misc]
            for name, f in fields.items()
            if f.default_factory is not None and name not in given
        )
        self.shared = issubclass(cls, SharesFieldsSet)
        self.fields_set: set[str] = SharedFieldsSet(given) if self.shared else given


_SHAPES: dict[tuple[type[BaseModel], tuple[str, ...]], _Shape] = {}
_MAX_SHAPES = 1024  # shapes kept; beyond, each is worked out again (still correct)


def trusted(cls: type[M], values: dict[str, Any]) -> M:
    """``cls(**values)`` without validation, for values agentkit built itself with the field
    types already (every caller has a test proving it equal to validated construction).

    The result is what validation would give: every field in ``__dict__`` in field order,
    defaults (fresh from their factories) for the others, ``values``' keys as the fields set
    (one shared set per combination, as :func:`share_fields_set` gives, when ``cls`` allows
    it). Nothing is copied: containers in ``values`` must be the model's own. A required
    field missing or an unknown one raises ``TypeError`` (a bug of the caller, not bad input)."""
    key = (cls, tuple(values))
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _Shape(cls, key[1])
        if len(_SHAPES) < _MAX_SHAPES:
            _SHAPES[key] = shape
    data = shape.defaults.copy()
    data.update(values)
    for name, factory in shape.factories:
        data[name] = factory()
    model = _new(cls)
    _set(model, "__dict__", data)
    _set_fields_set(model, shape.fields_set if shape.shared else set(values))
    _set_extra(model, None)
    _set_private(model, None)
    return model


# what pydantic's own construction sets, through the slots' descriptors (the cheapest way)
_new = object.__new__
_set = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class SharedParams(dict[str, Any]):
    """A record's ``sampling_params`` shared by every record sent the same ones (a chat
    backend's calls of one model mostly are): the same dict to read, compare and store, one
    copy in memory instead of one per call. It refuses to be changed in place (a change would
    reach every record sharing it); a copy (``dict(...)``, ``copy``, ``model_copy``) is a plain
    dict to change freely."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError(
            "these sampling_params are shared by the records sent the same ones: assign a "
            "changed copy (dict(record.sampling_params)) instead of changing them in place"
        )

    __setitem__ = __delitem__ = setdefault = pop = popitem = clear = update = _refuse
    __ior__ = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        from copy import deepcopy

        return {key: deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as the plain dict it reads as
        return (dict, (dict(self),))


def new_episode_id() -> str:
    return f"ep_{uuid.uuid4().hex[:16]}"


class TokenSource(StrEnum):
    """Where a token of the context came from. Only ``MODEL`` tokens are trained on."""

    PROMPT = "prompt"
    MODEL = "model"
    TOOL = "tool"
    USER = "user"
    TEMPLATE = "template"


class TokenSegment(BaseModel):
    """A run of context tokens with one source (e.g. one tool result, one generation prompt)."""

    model_config = ConfigDict(frozen=True)

    source: TokenSource
    ids: list[int]
    step_index: int | None = None


class AttemptCause(StrEnum):
    """Why an attempt of a model call failed (``None`` on the attempt when it succeeded).

    ``http_status``: the server answered 4xx/5xx. ``connection``: refused, reset or cut
    mid-reply. ``timeout``: no answer in time. ``protocol``: the reply was not what the protocol
    requires (invalid JSON, missing fields, no finish reason). ``incomplete_stream``: a stream
    ended without its terminator. ``server_error_event``: the server sent an error event in the
    stream. ``aborted``: the server aborted the request (SGLang ``finish_reason.type ==
    "abort"``). ``resource_exhausted``: this process ran out of file descriptors.
    ``client_error``: anything else raised on the client side while calling.
    """

    HTTP_STATUS = "http_status"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    PROTOCOL = "protocol"
    INCOMPLETE_STREAM = "incomplete_stream"
    SERVER_ERROR_EVENT = "server_error_event"
    ABORTED = "aborted"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    CLIENT_ERROR = "client_error"


class Attempt(SharesFieldsSet):
    """One HTTP attempt of a model call (retries are visible, not hidden).

    ``partial``: part of a streamed reply had reached the caller before the attempt failed (the
    caller was told to discard it). ``retry_after_s``: the server's ``Retry-After``;
    ``backoff_s``: how long the client waited before the next attempt.
    """

    number: int
    server: str
    started_at: float
    elapsed_s: float
    ok: bool
    status_code: int | None = None
    error: str | None = None
    cause: AttemptCause | None = None
    retryable: bool | None = None
    partial: bool = False
    retry_after_s: float | None = None
    backoff_s: float | None = None


class EpisodeStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    MAX_TURNS = "max_turns"
    TRUNCATED = "truncated"
    OUTPUT_INVALID = "output_invalid"
    MODEL_ERROR = "model_error"
    CANCELLED = "cancelled"
    FAILED = "failed"
    # paused until a person decides on its pending tool calls (unfinished: never exported)
    AWAITING_APPROVAL = "awaiting_approval"


class FailureAttribution(StrEnum):
    """Who caused an unsuccessful episode: infrastructure failures are excluded from training."""

    POLICY = "policy"
    INFRASTRUCTURE = "infrastructure"
    ENVIRONMENT = "environment"


class RunManifest(BaseModel):
    """Written once per store: what produced these trajectories."""

    kind: Literal["manifest"] = "manifest"
    schema_version: int = SCHEMA_VERSION
    created_at: float = Field(default_factory=time.time)
    model: str = ""
    mode: Literal["tokens", "chat"] = "chat"
    tokenizer_hash: str | None = None
    template_hash: str | None = None
    dialect: str = "glm45"
    engine: dict[str, Any] = Field(default_factory=dict)
    parser_settings: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class EpisodeStart(BaseModel):
    kind: Literal["episode_start"] = "episode_start"
    schema_version: int = SCHEMA_VERSION
    episode_id: str
    task_id: str | None = None
    group_id: str | None = None
    sample_index: int | None = None
    mode: Literal["tokens", "chat"] = "chat"
    token_exact: bool = False
    model: str = ""
    instructions: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)
    thinking: bool = True
    started_at: float = Field(default_factory=time.time)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # The conversation the episode opened with (OpenAI dicts), for the SFT view and exports.
    prompt_messages: list[dict[str, Any]] = Field(default_factory=list)
    # Ground truth for the reward function, if the task has one (slime ``label``).
    label: Any = None


class ModelCallRecord(SharesFieldsSet):
    """One model call. Token fields are ``None`` in chat mode, which cannot give them."""

    kind: Literal["model_call"] = "model_call"
    episode_id: str
    index: int
    turn: int
    mode: Literal["tokens", "chat"]
    server: str = ""
    started_at: float = 0.0
    elapsed_s: float = 0.0
    input_ids: list[int] | None = None
    # Linear storage: a store line may omit ``input_ids`` when it is the previous call's
    # ``input_ids + output_ids`` followed by ``appended`` (the append-only invariant); this is
    # then its length, and the reader rebuilds it. ``None`` on lines that carry ``input_ids``.
    input_elided: int | None = None
    output_ids: list[int] | None = None
    output_logprobs: list[float] | None = None
    appended: list[TokenSegment] = Field(default_factory=list)
    # MoE routing replay (SGLang ``return_routed_experts``) and the top-p/top-k sampling mask
    # (``return_sampling_mask``: the kept token ids of each generated token), when asked for.
    routed_experts: RoutedExperts | None = None
    sampling_mask: RaggedInts | None = None
    output_text: str = ""
    sampling_params: dict[str, Any] = Field(default_factory=dict)
    finish_reason: str | None = None
    matched_stop: int | str | None = None
    weight_version: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    spec_verify_ct: int | None = None
    accept_length: float | None = None
    engine_meta: dict[str, Any] = Field(default_factory=dict)
    reasoning: str | None = None
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    # A call that failed after every attempt: no output, ``error`` says why, ``attempts`` what
    # each try saw. Its episode ends ``model_error`` (excluded from training exports).
    failed: bool = False
    error: str | None = None
    error_cause: AttemptCause | None = None


class EnvStepRecord(SharesFieldsSet):
    """One environment step: a tool call and its outcome, or a message from the (simulated) user."""

    kind: Literal["env_step"] = "env_step"
    episode_id: str
    index: int
    turn: int
    # ``approval``: the run paused for approval (``status`` "awaiting_approval") or went on
    # with the decisions (``status`` "decided"); ``output`` holds them as JSON
    step_type: Literal["tool", "user", "agent_reply", "approval"] = "tool"
    call: ToolCall | None = None
    status: str = "ok"
    error: str | None = None
    error_type: str | None = None
    raw_output_chars: int = 0
    output: str = ""
    truncated: bool = False
    appended_ids: list[int] | None = None
    latency_s: float = 0.0
    sandbox: str | None = None
    started_at: float = 0.0


class Usage(BaseModel):
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    spec_verify_ct: int = 0
    tool_calls: int = 0
    # US dollars, when the agent has a price for its model (see agentkit.pricing)
    cost: float | None = None

    @property
    def accept_length(self) -> float | None:
        """Mean tokens per speculative verify step (``completion_tokens / spec_verify_ct``)."""
        if not self.spec_verify_ct:
            return None
        return self.completion_tokens / self.spec_verify_ct

    def add(self, other: Usage) -> None:
        """Add ``other`` into this (the cost stays ``None`` until some usage has one)."""
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.spec_verify_ct += other.spec_verify_ct
        self.tool_calls += other.tool_calls
        if other.cost is not None:
            self.cost = (self.cost or 0.0) + other.cost

    def add_call(self, record: ModelCallRecord) -> None:
        """Count one model call. Written to the fields directly: what pydantic's attribute
        assignment does for this model (no validation on assignment), without its per-field
        cost on the loop's path (five assignments a step)."""
        values = self.__dict__
        values["requests"] += 1
        values["prompt_tokens"] += record.prompt_tokens or 0
        values["completion_tokens"] += record.completion_tokens or 0
        values["cached_tokens"] += record.cached_tokens or 0
        self.__pydantic_fields_set__.update(_CALL_COUNTS)
        if record.spec_verify_ct:
            values["spec_verify_ct"] += record.spec_verify_ct
            self.__pydantic_fields_set__.add("spec_verify_ct")

    def add_tool_calls(self, count: int) -> None:
        """Count ``count`` tool calls (as :meth:`add_call` writes its counts)."""
        self.__dict__["tool_calls"] += count
        self.__pydantic_fields_set__.add("tool_calls")


_CALL_COUNTS = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens")


class EpisodeEnd(BaseModel):
    kind: Literal["episode_end"] = "episode_end"
    episode_id: str
    status: EpisodeStatus
    termination_reason: str = ""
    failure: FailureAttribution | None = None
    error: str | None = None
    output: Any = None
    reward: float | None = None
    reward_components: dict[str, Any] = Field(default_factory=dict)
    # Per-turn rewards (keyed by the model call's ``turn``) and per-tool-call rewards (keyed by
    # the call id), when the reward function gives them (verl ``turn_scores`` / ``tool_rewards``).
    turn_rewards: dict[int, float] = Field(default_factory=dict)
    tool_rewards: dict[str, float] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    ended_at: float = Field(default_factory=time.time)
    elapsed_s: float = 0.0
    # The final conversation (OpenAI dicts) when the loop provides it; the SFT view prefers it.
    messages: list[dict[str, Any]] | None = None
    # Time spent outside the model (tools, user simulator) and scoring the reward.
    env_s: float | None = None
    reward_s: float | None = None


TrajectoryItem = Annotated[
    RunManifest | EpisodeStart | ModelCallRecord | EnvStepRecord | EpisodeEnd,
    Field(discriminator="kind"),
]


class Trajectory(BaseModel):
    """One episode in memory: its start, calls and steps in the order they happened, its end."""

    start: EpisodeStart
    calls: list[ModelCallRecord] = Field(default_factory=list)
    steps: list[EnvStepRecord] = Field(default_factory=list)
    end: EpisodeEnd | None = None

    @property
    def episode_id(self) -> str:
        return self.start.episode_id

    @property
    def finished(self) -> bool:
        return self.end is not None

    def items(self) -> list[ModelCallRecord | EnvStepRecord]:
        """Calls and steps interleaved in the order they happened."""
        merged: list[ModelCallRecord | EnvStepRecord] = [*self.calls, *self.steps]
        merged.sort(key=lambda item: (item.turn, 0 if item.kind == "model_call" else 1, item.index))
        return merged
