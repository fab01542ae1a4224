"""One base for the runtime's async resources: ``async with x:`` ends in ``await x.aclose()``."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncCloseable:
    """``async with obj:`` gives ``obj`` and, however the block ends, awaits ``obj.aclose()``.

    A subclass defines ``aclose`` (safe to call twice) and overrides ``__aenter__`` when entering
    starts something (it then closes what it started if starting fails, and returns ``self``)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define aclose()")
