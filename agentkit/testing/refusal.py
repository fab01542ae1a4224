"""``Refused``: raised inside an endpoint's steps to answer with an error response instead."""

from __future__ import annotations

from aiohttp import web

__all__ = ["Refused"]


class Refused(Exception):
    """The request is answered with ``response`` (an SGLang-shaped error) instead."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.text)
        self.response = response
