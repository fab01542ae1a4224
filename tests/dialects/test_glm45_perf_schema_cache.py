"""A tool list passed again is typed from schemas kept for it (``schema_cache.py``), and any
change to the list (a tool added, removed or replaced) is read afresh."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agentkit.dialects.glm45 import StreamParser, ToolSchemas, parse
from agentkit.dialects.glm45.schema_cache import schemas_for


def _tool(name: str, kind: str) -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"x": {"type": kind}}}
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


def _call(name: str, value: str) -> str:
    return (
        f"<think></think><tool_call>{name}\n<arg_key>x</arg_key>\n<arg_value>{value}"
        "</arg_value>\n</tool_call>"
    )


def test_a_list_passed_again_gets_schemas_compiled_once() -> None:
    tools = [_tool("act", "integer")]
    first = schemas_for(tools)
    second = schemas_for(tools)
    assert second is not first  # the first use reads the list lazily, as a one-off
    assert schemas_for(tools) is second
    assert schemas_for(list(tools)) is not second  # another list, even with equal contents
    compiled = ToolSchemas.compiled(tools)
    assert schemas_for(compiled) is compiled
    assert schemas_for(None).given is False


def test_changes_to_the_list_are_read_afresh() -> None:
    tools = [_tool("act", "integer")]
    for _ in range(3):
        parsed = parse(_call("act", "7"), tools)
        assert parsed.tool_calls[0].arguments == {"x": 7}
    assert [p.kind for p in parse(_call("new", "7"), tools).problems] == ["unknown_tool"]
    tools.append(_tool("new", "string"))  # added
    assert parse(_call("new", "7"), tools).tool_calls[0].arguments == {"x": "7"}
    assert parse(_call("new", "7"), tools).problems == []
    tools[0] = _tool("act", "string")  # replaced
    assert parse(_call("act", "7"), tools).tool_calls[0].arguments == {"x": "7"}
    del tools[1]  # removed
    assert [p.kind for p in parse(_call("new", "7"), tools).problems] == ["unknown_tool"]


def test_the_stream_parser_shares_the_kept_schemas() -> None:
    tools = [_tool("act", "number")]
    for _ in range(3):
        parser = StreamParser(tools)
        parser.close(_call("act", "1.5"))
        assert parser.result() == parse(_call("act", "1.5"), tools)
        assert parser.result().tool_calls[0].arguments == {"x": 1.5}


def test_only_the_tools_offered_keep_argument_types() -> None:
    schemas = ToolSchemas.compiled([_tool("act", "integer")])
    assert schemas.types_of("act") is schemas.types_of("act")
    assert schemas.argument_type("act", "x") == ({"type": "integer"}, "integer")
    assert schemas.types_of("act") == {"x": ({"type": "integer"}, "integer")}
    assert schemas.argument_type("act", "other") == (None, None)
    assert "other" not in schemas.types_of("act")  # a key the schema does not name
    assert schemas.types_of("invented") is not schemas.types_of("invented")  # not kept


def test_threads_parsing_with_one_list_agree() -> None:
    tools = [_tool(f"tool_{i}", "integer") for i in range(20)]
    texts = [_call(f"tool_{i % 20}", str(i)) for i in range(400)]
    expected = [parse(text, [dict(t) for t in tools]) for text in texts]  # fresh lists
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda text: parse(text, tools), texts))
    assert results == expected
    assert all(not r.problems for r in results)


def test_only_lists_and_tuples_are_kept() -> None:
    class Tools(list[dict[str, Any]]):
        """A list subclass may read differently each time: never kept."""

    tools = Tools([_tool("act", "integer")])
    assert schemas_for(tools) is not schemas_for(tools)
    as_tuple = (_tool("act", "integer"),)
    schemas_for(as_tuple)
    assert schemas_for(as_tuple) is schemas_for(as_tuple)
    assert parse(_call("act", "3"), as_tuple).tool_calls[0].arguments == {"x": 3}
