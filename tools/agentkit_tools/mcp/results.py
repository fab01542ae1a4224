"""How MCP tool results and tool descriptions become what an agentkit model sees."""

from __future__ import annotations

import json
import re
from typing import Any

import mcp_types as mt


def result_text(result: mt.CallToolResult) -> str:
    """The text of a tool result: text blocks as they are, other blocks as short placeholders,
    and the structured content as JSON when the server sent no text."""
    parts = [_block_text(block) for block in result.content]
    texts = [p for p in parts if p]
    if not texts and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(texts)


def _block_text(block: Any) -> str:
    if isinstance(block, mt.TextContent):
        return block.text
    if isinstance(block, mt.ImageContent):
        return f"[image {block.mime_type}, {len(block.data)} base64 characters]"
    if isinstance(block, mt.AudioContent):
        return f"[audio {block.mime_type}, {len(block.data)} base64 characters]"
    if isinstance(block, mt.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, mt.TextResourceContents):
            return resource.text
        return f"[resource {resource.uri}, binary]"
    if isinstance(block, mt.ResourceLink):
        return f"[resource link {block.uri}]"
    return f"[{getattr(block, 'type', type(block).__name__)} content]"


_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def local_name(remote: str, prefix: str | None) -> str:
    """The agentkit tool name of an MCP tool: ``prefix_name`` with characters a model API would
    refuse replaced by ``_``, cut to 64 characters."""
    name = f"{prefix}_{remote}" if prefix else remote
    return _UNSAFE.sub("_", name)[:64] or "tool"


def input_schema(tool: mt.Tool) -> dict[str, Any]:
    """The tool's JSON schema for its arguments, kept as the server sent it (an object schema)."""
    schema = dict(tool.input_schema or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema
