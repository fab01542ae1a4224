"""The weather agent of the loop tests: its two tools, its structured report, and the scripted
turns (GLM-4.5's format) that the SGLang test server plays back."""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.lowlevel
from pydantic import BaseModel

from agentkit import tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.testing import SGLangTestServer


@tool
def get_weather(city: str, days: int = 1) -> dict[str, Any]:
    """Weather forecast for a city.

    Args:
        city: City name.
        days: Number of days.
    """
    return {"city": city, "days": days, "temp_c": 21 if city == "Paris" else 12}


@tool
async def convert(celsius: float) -> str:
    """Convert Celsius to Fahrenheit.

    Args:
        celsius: Temperature in Celsius.
    """
    await anyio.lowlevel.checkpoint()
    return f"{celsius * 9 / 5 + 32:.1f}F"


class Report(BaseModel):
    city: str
    fahrenheit: str


def call(name: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    return (name, arguments)


def turn(reasoning: str, content: str, *calls: tuple[str, dict[str, Any]], thinking: bool) -> str:
    return format_assistant(
        reasoning if thinking else None, content, list(calls), thinking=thinking
    )


def weather_script(thinking: bool) -> list[str]:
    return [
        turn(
            "I need both forecasts.",
            "Checking two cities.",
            call("get_weather", city="Paris", days=2),
            call("get_weather", city="Oslo"),
            thinking=thinking,
        ),
        turn("Paris is 21C; convert it.", "", call("convert", celsius=21), thinking=thinking),
        turn(
            "Done.",
            json.dumps({"city": "Paris", "fahrenheit": "69.8F"}),
            thinking=thinking,
        ),
    ]


def exchanges(server: SGLangTestServer, path: str) -> list[dict[str, Any]]:
    """The successful generation exchanges at ``path``, as request/response dicts."""
    return [
        {"request": r.request, "response": r.response}
        for r in server.requests
        if r.path == path and r.status == 200 and not r.dropped
    ]
