"""The test server's aiohttp application: SGLang's routes on one :class:`ServerState`.

The two generation endpoints (``/v1/chat/completions``, ``/generate``) go through
:func:`generation_route`, which records the request and applies injected faults; the info and
admin endpoints (health, model and server info, cache flush, abort, weight updates) through
:func:`logged`, which only records.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .chat_endpoint import handle_chat_completions
from .fault_routes import after_answer, before_answer
from .faults import FAULT_KEY
from .generate_endpoint import handle_generate
from .state import RequestRecord, ServerState, error_response, json_response

__all__ = ["build_app"]

SERVER_VERSION = "0.5.23-agentkit-test"
Handler = Callable[[ServerState, web.Request, RequestRecord], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(state: ServerState) -> web.Application:
    app = web.Application(client_max_size=256 * 1024 * 1024)
    router = app.router
    router.add_post("/v1/chat/completions", generation_route(state, handle_chat_completions, True))
    router.add_post("/generate", generation_route(state, handle_generate, False))
    admin = _AdminRoutes(state)
    gets: dict[str, Route] = {
        "/health": admin.health,
        "/health_generate": admin.health,
        "/model_info": admin.model_info,
        "/get_model_info": admin.model_info,
        "/server_info": admin.server_info,
        "/get_server_info": admin.server_info,
        "/v1/models": admin.models,
        "/flush_cache": admin.flush_cache,
    }
    posts: dict[str, Route] = {
        "/flush_cache": admin.flush_cache,
        "/abort_request": admin.abort_request,
        "/update_weight_version": admin.update_weight_version,
        "/update_weights_from_disk": admin.update_weights_from_disk,
    }
    for path, handler in gets.items():
        router.add_get(path, logged(state, handler))
    for path, handler in posts.items():
        router.add_post(path, logged(state, handler))
    return app


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering (the client sees a disconnect)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise ConnectionResetError("test server dropped the connection on purpose")


def generation_route(state: ServerState, handler: Handler, openai: bool) -> Route:
    """``handler`` behind the request record and the fault plan (drops, statuses, faults)."""

    async def route(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        record = state.record(RequestRecord(request.method, request.path, body))
        status, drop = state.take_fault()
        if drop:
            record.dropped = True
            record.status = 0
            return _drop(request)
        fault = state.faults.take() if status is None else None
        if fault is not None:
            record.fault = fault
            request[FAULT_KEY] = fault
            stream = isinstance(body, dict) and bool(body.get("stream"))
            early = await before_answer(state, request, record, fault, openai, stream=stream)
            if early is not None:
                return early
        if status is not None:
            response: web.StreamResponse = error_response(
                f"injected failure (status {status})", status, openai=openai
            )
        elif not isinstance(body, dict):
            response = error_response("request body must be a JSON object", 400, openai=openai)
        else:
            response = await handler(state, request, record)
        record.status = response.status
        if isinstance(response, web.Response) and record.response is None and response.text:
            record.response = json.loads(response.text)
        if fault is not None and isinstance(response, web.Response):
            return await after_answer(request, record, fault, response)
        return response

    return route


def logged(state: ServerState, handler: Route) -> Route:
    """``handler`` with its request and answer kept in the server's records."""

    async def route(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        record = state.record(RequestRecord(request.method, request.path, body))
        response = await handler(request)
        record.status = response.status
        if isinstance(response, web.Response) and response.text:
            try:
                record.response = json.loads(response.text)
            except json.JSONDecodeError:
                record.response = response.text
        return response

    return route


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


class _AdminRoutes:
    """SGLang's info and admin endpoints, answered from the server state."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.options = state.options

    async def health(self, _: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    async def model_info(self, _: web.Request) -> web.StreamResponse:
        options = self.options
        return json_response(
            {
                "model_path": options.model,
                "tokenizer_path": getattr(self.state.tokenizer, "source", ""),
                "served_model_name": options.model,
                "is_generation": True,
                "preferred_sampling_params": None,
                "weight_version": self.state.weight_version,
                "has_image_understanding": False,
                "has_audio_understanding": False,
                "model_type": "glm4_moe",
                "architectures": ["Glm4MoeForCausalLM"],
                "reasoning_parser": "glm45",
                "tool_call_parser": "glm45",
            }
        )

    async def server_info(self, _: web.Request) -> web.StreamResponse:
        options = self.options
        speculative = options.accept_length is not None
        return json_response(
            {
                "model_path": options.model,
                "served_model_name": options.model,
                "tool_call_parser": "glm45",
                "reasoning_parser": "glm45",
                "context_length": options.context_length,
                "speculative_algorithm": "EAGLE" if speculative else None,
                "speculative_num_steps": 3 if speculative else None,
                "speculative_eagle_topk": 1 if speculative else None,
                "speculative_num_draft_tokens": 4 if speculative else None,
                "internal_states": [
                    {"avg_spec_accept_length": options.accept_length, "last_gen_throughput": 0.0}
                ],
                "version": SERVER_VERSION,
            }
        )

    async def models(self, _: web.Request) -> web.StreamResponse:
        options = self.options
        model = {
            "id": options.model,
            "object": "model",
            "created": int(self.state.started_at),
            "owned_by": "sglang",
            "root": options.model,
            "max_model_len": options.context_length,
        }
        return json_response({"object": "list", "data": [model]})

    async def flush_cache(self, _: web.Request) -> web.StreamResponse:
        self.state.engine.cache.flush()
        return web.Response(text="Cache flushed.\n", status=200)

    async def abort_request(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        self.state.abort(body.get("rid"), bool(body.get("abort_all")))
        return web.Response(status=200)

    async def update_weight_version(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        version = body.get("new_version")
        if not isinstance(version, str) or not version:
            return error_response("'new_version' must be a non-empty string", 400, openai=False)
        self.state.weight_version = version
        return json_response({"success": True, "message": f"weight version set to {version}"})

    async def update_weights_from_disk(self, request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        if not isinstance(body.get("model_path"), str):
            return error_response("'model_path' is required", 400, openai=False)
        if isinstance(body.get("weight_version"), str):
            self.state.weight_version = body["weight_version"]
        if body.get("flush_cache", True):
            self.state.engine.cache.flush()
        return json_response(
            {
                "success": True,
                "message": "Succeeded to update model weights.",
                "num_paused_requests": 0,
            }
        )
