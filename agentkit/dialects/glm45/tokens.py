"""GLM-4.5 special tokens, stop tokens and the markup tags its chat format uses.

Ids follow the research table (``shared/research/sglang-glm45-protocol.md`` §1.4). The ids of
the role, stop and ``<think>`` tokens are sourced; the order of the tool-markup tags
(151352-151359) and ``/nothink`` (151360) are inferred from the GLM family's tokenizer lists.
"""

from __future__ import annotations

from typing import Final

SPECIAL_TOKENS: Final[dict[str, int]] = {
    "<|endoftext|>": 151329,
    "[MASK]": 151330,
    "[gMASK]": 151331,
    "[sMASK]": 151332,
    "<sop>": 151333,
    "<eop>": 151334,
    "<|system|>": 151335,
    "<|user|>": 151336,
    "<|assistant|>": 151337,
    "<|observation|>": 151338,
    "<|begin_of_image|>": 151339,
    "<|end_of_image|>": 151340,
    "<|begin_of_video|>": 151341,
    "<|end_of_video|>": 151342,
    "<|begin_of_audio|>": 151343,
    "<|end_of_audio|>": 151344,
    "<|begin_of_transcription|>": 151345,
    "<|end_of_transcription|>": 151346,
    "<|code_prefix|>": 151347,
    "<|code_middle|>": 151348,
    "<|code_suffix|>": 151349,
    "<think>": 151350,
    "</think>": 151351,
    "<tool_call>": 151352,
    "</tool_call>": 151353,
    "<tool_response>": 151354,
    "</tool_response>": 151355,
    "<arg_key>": 151356,
    "</arg_key>": 151357,
    "<arg_value>": 151358,
    "</arg_value>": 151359,
    "/nothink": 151360,
    "<|begin_of_box|>": 151361,
    "<|end_of_box|>": 151362,
    "<|image|>": 151363,
    "<|video|>": 151364,
}

USER: Final = "<|user|>"
ASSISTANT: Final = "<|assistant|>"
SYSTEM: Final = "<|system|>"
OBSERVATION: Final = "<|observation|>"
ENDOFTEXT: Final = "<|endoftext|>"
PROMPT_PREFIX: Final = "[gMASK]<sop>"

STOP_TOKENS: Final[tuple[str, str, str]] = (USER, OBSERVATION, ENDOFTEXT)
STOP_TOKEN_IDS: Final[tuple[int, int, int]] = (151336, 151338, 151329)  # same order as STOP_TOKENS

THINK_OPEN: Final = "<think>"
THINK_CLOSE: Final = "</think>"
CALL_OPEN: Final = "<tool_call>"
CALL_CLOSE: Final = "</tool_call>"
KEY_OPEN: Final = "<arg_key>"
KEY_CLOSE: Final = "</arg_key>"
VALUE_OPEN: Final = "<arg_value>"
VALUE_CLOSE: Final = "</arg_value>"
NOTHINK: Final = "/nothink"
