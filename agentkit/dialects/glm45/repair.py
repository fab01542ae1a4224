"""What to tell a GLM-4.5 model whose tool call could not be parsed."""

from __future__ import annotations


def repair_hint() -> str:
    """How a well-formed GLM-4.5 call is written (the markup the chat template uses)."""
    return (
        "Write each call as <tool_call>NAME\n<arg_key>KEY</arg_key>\n<arg_value>VALUE</arg_value>"
        "\n</tool_call>, one <arg_key>/<arg_value> pair per argument, each key once."
    )
