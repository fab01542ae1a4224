"""What a run costs: a price table per model applied to the run's token usage.

Prices are US dollars per million tokens: input (prompt tokens not served from the prefix
cache), cached input (prompt tokens the server reports as cached; the input price when not
given) and output (completion tokens). ``Agent(prices=...)`` takes a :class:`PriceTable` (by
model name), one :class:`ModelPrice` (whatever the model) or a plain mapping name -> price;
every :class:`~agentkit.trajectory.records.Usage` the agent returns or records then has
``cost``. A model the table does not name leaves ``cost`` as ``None`` (unknown, not free).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from agentkit.trajectory.records import Usage

PER_TOKENS = 1_000_000


class ModelPrice(BaseModel):
    """Dollars per 1M tokens."""

    model_config = ConfigDict(frozen=True)

    input_per_mtok: float = Field(ge=0.0)
    output_per_mtok: float = Field(ge=0.0)
    cached_input_per_mtok: float | None = Field(None, ge=0.0)

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        uncached = usage.prompt_tokens - cached
        cached_price = (
            self.input_per_mtok
            if self.cached_input_per_mtok is None
            else self.cached_input_per_mtok
        )
        dollars = (
            uncached * self.input_per_mtok
            + cached * cached_price
            + usage.completion_tokens * self.output_per_mtok
        )
        return dollars / PER_TOKENS


class PriceTable(BaseModel):
    """Prices by model name (the backend's ``name``, e.g. the served model)."""

    models: dict[str, ModelPrice] = Field(default_factory=dict)

    def price_for(self, model: str) -> ModelPrice | None:
        return self.models.get(model)

    def cost(self, usage: Usage, model: str) -> float | None:
        price = self.price_for(model)
        return price.cost(usage) if price is not None else None


Prices = PriceTable | ModelPrice | Mapping[str, ModelPrice]


def as_price_table(prices: Prices | None) -> PriceTable | ModelPrice | None:
    """Check ``Agent(prices=...)``; ``TypeError`` for anything but the three accepted forms."""
    if prices is None or isinstance(prices, PriceTable | ModelPrice):
        return prices
    if isinstance(prices, Mapping):
        return PriceTable(models=dict(prices))
    raise TypeError(
        f"prices must be a PriceTable, a ModelPrice or a mapping of model name to ModelPrice, "
        f"not {type(prices).__name__}"
    )


def priced(usage: Usage, prices: PriceTable | ModelPrice | None, model: str) -> Usage:
    """A copy of ``usage`` with ``cost`` set from ``prices`` (``None`` when unpriced)."""
    copy = usage.model_copy()
    if isinstance(prices, ModelPrice):
        copy.cost = prices.cost(usage)
    elif isinstance(prices, PriceTable):
        copy.cost = prices.cost(usage, model)
    return copy
