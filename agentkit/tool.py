"""Tools from plain typed Python functions.

``@tool`` reads the signature and docstring of a sync or async function and builds the JSON
schema the model sees plus a pydantic validator for the arguments it sends back. A parameter
annotated ``RunContext`` is injected by the runtime and hidden from the model. Sync functions run
in worker threads (or, when asked with ``inline=True`` / ``"auto"``, on the event loop: see
:mod:`agentkit.sync_tools`); every call has a timeout and an output size limit, and every failure becomes a
:class:`ToolOutcome` the model can read instead of an exception that would end the run.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar, get_origin, get_type_hints, overload

import anyio
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic import Field as PydField

from agentkit.messages import assemble
from agentkit.sync_tools import Inline, SyncCaller

DepsT = TypeVar("DepsT")


@dataclass
class RunContext(Generic[DepsT]):
    """What a tool may know about the run that calls it. ``deps`` is whatever the caller passed to
    ``Agent.run(..., deps=...)``: a database handle, a sandbox, a browser context."""

    deps: DepsT
    run_id: str = ""
    turn: int = 0
    call_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


class ToolError(Exception):
    """Raise inside a tool to send a plain error message to the model (no traceback)."""


class ToolStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    INVALID_ARGUMENTS = "invalid_arguments"
    UNKNOWN_TOOL = "unknown_tool"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    DENIED = "denied"  # a person or a ``before_tool_call`` hook refused the call


class ToolOutcome(BaseModel):
    """The result of one tool call, as recorded and as shown to the model (``output``)."""

    model_config = ConfigDict(frozen=True)

    status: ToolStatus
    output: str
    error: str | None = None
    error_type: str | None = None
    raw_chars: int = 0
    truncated: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is ToolStatus.OK


_OK_GIVEN = frozenset(("status", "output", "raw_chars", "truncated", "elapsed_s"))


def ok_outcome(output: str, raw_chars: int, truncated: bool, elapsed_s: float) -> ToolOutcome:
    """``ToolOutcome(status=OK, output=..., raw_chars=..., truncated=..., elapsed_s=...)``.

    Values of exactly the field types (what a tool call builds) are stored as they are,
    without a validation: the same fields, field order and fields set as validated
    construction gives (tests/loop/test_step_path_trusted.py). Anything else is validated."""
    if (
        type(output) is str
        and type(raw_chars) is int
        and type(truncated) is bool
        and type(elapsed_s) is float
    ):
        data = {
            "status": ToolStatus.OK,
            "output": output,
            "error": None,
            "error_type": None,
            "raw_chars": raw_chars,
            "truncated": truncated,
            "elapsed_s": elapsed_s,
        }
        # its own fields set: a frozen outcome cannot copy a shared one before a model_copy
        return assemble(ToolOutcome, data, set(_OK_GIVEN))
    return ToolOutcome(
        status=ToolStatus.OK,
        output=output,
        raw_chars=raw_chars,
        truncated=truncated,
        elapsed_s=elapsed_s,
    )


DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_OUTPUT_CHARS = 16_000

Handler = Callable[[dict[str, Any], RunContext[Any]], Awaitable[Any]]
# ``True``: every call needs a person's approval; a predicate: the calls whose arguments it
# accepts do (it sees the arguments as the model wrote them, before validation).
ApprovalRule = bool | Callable[[dict[str, Any]], bool]


def render_output(value: Any) -> str:
    """How a tool's return value is shown to the model."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError):
        return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` to ``limit`` characters, keeping head and tail, and say so in the text."""
    if len(text) <= limit:
        return text, False
    marker = f"\n...[truncated {len(text) - limit} of {len(text)} characters]...\n"
    keep = max(limit - len(marker), 0)
    head = keep * 2 // 3
    tail = keep - head
    return text[:head] + marker + (text[-tail:] if tail else ""), True


class Tool:
    """A callable the model can use: a name, a description, a JSON schema and a handler.

    Build one with :func:`tool` from a function, or directly with a JSON schema and an async
    handler taking ``(arguments, ctx)`` (for tools whose schema is fixed by someone else).
    """

    def __init__(
        self,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        handler: Handler,
        *,
        validator: type[BaseModel] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        strict: bool = False,
        requires_approval: ApprovalRule = False,
    ) -> None:
        if not (isinstance(requires_approval, bool) or callable(requires_approval)):
            raise TypeError("requires_approval must be a bool or a predicate over the arguments")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", name):
            raise ValueError(f"tool name {name!r} must be 1-64 letters, digits, '_', '.', '-'")
        self.name = name
        self.description = description
        self.parameters: dict[str, Any] = dict(parameters)
        self.handler = handler
        self.validator = validator
        self.timeout = timeout
        self.max_output_chars = max_output_chars
        self.strict = strict
        self.requires_approval = requires_approval
        # set by ``tool_from_function`` for a sync function: its calls that run inline skip
        # the handler's await and the timeout's cancel scope (which could not stop them)
        self._sync: SyncCaller | None = None
        self._context_param: str | None = None
        self._sync_handler: Handler | None = None  # the handler the fast path stands in for
        # the validator's field names (``model_fields`` is a class property, costly per call)
        self._field_names: tuple[type[BaseModel], tuple[str, ...]] | None = None

    def needs_approval(self, arguments: Mapping[str, Any]) -> str | None:
        """Why a call with ``arguments`` must wait for approval, or ``None`` if it need not.
        A predicate that raises counts as "needs approval" (fail closed)."""
        rule = self.requires_approval
        if rule is True:
            return "the tool always requires approval"
        if rule is False:
            return None
        try:
            needed = bool(rule(dict(arguments)))
        except Exception as exc:
            return f"the approval rule raised {describe_exception(exc)}"
        return "the approval rule matched these arguments" if needed else None

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def schema(self) -> dict[str, Any]:
        """The OpenAI tool object (``{"type": "function", "function": {...}}``)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Check and coerce arguments; raises :class:`ValidationError` or :class:`ToolError`."""
        if self.validator is None:
            return _check_against_schema(dict(arguments), self.parameters)
        model = self.validator.model_validate(
            arguments if type(arguments) is dict else dict(arguments)
        )
        kind = type(model)
        names = self._field_names
        if names is None or names[0] is not kind:  # once per validator class
            names = self._field_names = (kind, tuple(kind.model_fields))
        return {name: getattr(model, name) for name in names[1]}

    async def call(self, arguments: Mapping[str, Any], ctx: RunContext[Any]) -> ToolOutcome:
        """Validate, run and render; never raises except for cancellation of the caller."""
        started = time.perf_counter()
        try:
            values = self.validate(arguments)
        except ValidationError as exc:
            return self._fail(ToolStatus.INVALID_ARGUMENTS, _describe_validation(exc), exc, started)
        except ToolError as exc:
            return self._fail(ToolStatus.INVALID_ARGUMENTS, safe_str(exc), exc, started)
        except Exception as exc:  # a validator that crashed instead of rejecting
            message = f"argument validation failed: {describe_exception(exc)}"
            return self._fail(ToolStatus.INVALID_ARGUMENTS, message, exc, started)
        sync = self._sync
        try:
            if sync is not None and self.handler is self._sync_handler:
                kwargs = self._kwargs(values, ctx)
                if sync.runs_inline:
                    value = sync.call_inline(kwargs)
                else:  # the time limit kept by the worker pool, not a cancel scope
                    value = await sync.call_threaded(kwargs, self.timeout)
            elif self.timeout is None:
                value = await self.handler(values, ctx)
            else:
                with anyio.fail_after(self.timeout):
                    value = await self.handler(values, ctx)
        except TimeoutError as exc:
            message = f"tool {self.name!r} timed out after {self.timeout:g} s"
            return self._fail(ToolStatus.TIMEOUT, message, exc, started)
        except ToolError as exc:
            return self._fail(ToolStatus.ERROR, safe_str(exc), exc, started)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            return self._fail(ToolStatus.ERROR, describe_exception(exc), exc, started)
        try:
            text = render_output(value)
            shown, cut = truncate(text, self.max_output_chars)
        except Exception as exc:  # e.g. a result whose __str__ raises
            message = f"the result of {self.name!r} cannot be shown: {describe_exception(exc)}"
            return self._fail(ToolStatus.ERROR, message, exc, started)
        return ok_outcome(shown, len(text), cut, time.perf_counter() - started)

    def _kwargs(self, values: dict[str, Any], ctx: RunContext[Any]) -> dict[str, Any]:
        """The function's keyword arguments: ``values`` itself (read, never changed) when
        the function takes no context, else a copy with the context added."""
        if self._context_param is None:
            return values
        kwargs = dict(values)
        kwargs[self._context_param] = ctx
        return kwargs

    def _fail(
        self, status: ToolStatus, message: str, exc: BaseException, started: float
    ) -> ToolOutcome:
        shown, cut = truncate(f"Error: {message}", self.max_output_chars)
        return ToolOutcome(
            status=status,
            output=shown,
            error=message,
            error_type=type(exc).__name__,
            raw_chars=len(message),
            truncated=cut,
            elapsed_s=time.perf_counter() - started,
        )


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a stand-in when the exception's own ``__str__`` fails."""
    try:
        return str(exc)
    except Exception as inner:
        return f"<{type(exc).__name__} whose message cannot be shown: {type(inner).__name__}>"


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` for an error text the model or the record can show."""
    return f"{type(exc).__name__}: {safe_str(exc)}"


def _describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid arguments: " + "; ".join(parts)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _check_against_schema(arguments: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow JSON-schema check for tools built from a raw schema: required keys, unknown keys
    when ``additionalProperties`` is false, and the top-level type of each property."""
    properties: Mapping[str, Any] = schema.get("properties", {}) or {}
    missing = [k for k in schema.get("required", []) or [] if k not in arguments]
    problems = [f"{k}: field required" for k in missing]
    if schema.get("additionalProperties") is False:
        problems += [f"{k}: unexpected argument" for k in arguments if k not in properties]
    for key, value in arguments.items():
        declared = properties.get(key, {}).get("type")
        names = declared if isinstance(declared, list) else [declared] if declared else []
        if not names:
            continue
        allowed = tuple(t for n in names for t in _JSON_TYPES.get(n, ()))
        is_bool = isinstance(value, bool)
        if allowed and (not isinstance(value, allowed) or (is_bool and bool not in allowed)):
            problems.append(f"{key}: expected {' or '.join(names)}, got {type(value).__name__}")
    if problems:
        raise ToolError("invalid arguments: " + "; ".join(problems))
    return arguments


# --- building tools from functions -------------------------------------------------------------

_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters)\s*:\s*$")
_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^\s*(Returns|Raises|Yields|Examples?|Notes?)\s*:\s*$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into the summary and per-argument descriptions."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    current: str | None = None
    section = "summary"
    for line in lines:
        if _ARGS_HEADER.match(line):
            section, current = "args", None
            continue
        if _SECTION.match(line):
            section, current = "other", None
            continue
        if section == "summary":
            summary.append(line)
        elif section == "args":
            match = _ARG_LINE.match(line)
            indent = len(line) - len(line.lstrip())
            if match and (current is None or indent <= 4):
                current = match.group(1)
                params[current] = match.group(2).strip()
            elif current and line.strip():
                params[current] = (params[current] + " " + line.strip()).strip()
    return "\n".join(summary).strip(), params


def _is_context(annotation: Any) -> bool:
    return annotation is RunContext or get_origin(annotation) is RunContext


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    schema.setdefault("properties", {})
    return schema


def tool_from_function(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    requires_approval: ApprovalRule = False,
    inline: Inline = False,
) -> Tool:
    """Build a :class:`Tool` from a typed function (sync or async). ``inline``: where a sync
    function runs (see :mod:`agentkit.sync_tools`; ignored for async functions)."""
    signature = inspect.signature(fn)
    hints = get_type_hints(fn, include_extras=True)
    summary, arg_docs = parse_docstring(fn.__doc__)
    fields: dict[str, Any] = {}
    context_param: str | None = None
    for pname, param in signature.parameters.items():
        annotation = hints.get(pname, Any)
        if _is_context(annotation):
            context_param = pname
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {fn.__name__}: *args/**kwargs are not supported")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, PydField(default, description=arg_docs.get(pname) or None))
    model_name = "".join(part.title() for part in (name or fn.__name__).split("_")) + "Args"
    validator = create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)
    parameters = _clean_schema(validator.model_json_schema())
    is_async = inspect.iscoroutinefunction(fn)
    sync_call = None if is_async else SyncCaller(fn, inline)

    async def handler(values: dict[str, Any], ctx: RunContext[Any]) -> Any:
        kwargs = dict(values)
        if context_param is not None:
            kwargs[context_param] = ctx
        if sync_call is None:
            return await fn(**kwargs)
        return await sync_call(kwargs)

    made = Tool(
        name or fn.__name__,
        description if description is not None else summary,
        parameters,
        handler,
        validator=validator,
        timeout=timeout,
        max_output_chars=max_output_chars,
        requires_approval=requires_approval,
    )
    # a copy given another handler (a wrapper) no longer matches and goes through it
    made._sync, made._context_param, made._sync_handler = sync_call, context_param, handler
    return made


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    requires_approval: ApprovalRule = False,
    inline: Inline = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    requires_approval: ApprovalRule = False,
    inline: Inline = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Decorator: ``@tool`` or ``@tool(name=..., timeout=..., max_output_chars=...,
    requires_approval=True | predicate, inline=False | True | "auto")``."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return tool_from_function(
            f,
            name=name,
            description=description,
            timeout=timeout,
            max_output_chars=max_output_chars,
            requires_approval=requires_approval,
            inline=inline,
        )

    return wrap(fn) if fn is not None else wrap


ToolLike = Tool | Callable[..., Any]


def as_tool(item: ToolLike) -> Tool:
    return item if isinstance(item, Tool) else tool_from_function(item)
