"""The demo bookshop's tools, each an agentkit tool (:class:`~agentkit.envs.domain.DomainTool`);
what each one does to the database is in :mod:`.operations`. ``DEMO_TOOLS`` groups them."""

from __future__ import annotations

from agentkit.envs.domain import DomainTool
from agentkit.toolset import Toolset

from ..common import calculate, cancel_reason, obj, string, think, transfer_to_human_agents
from . import operations as ops

_ORDER_ID = string("The order id, e.g. '#D5000'.")

find_customer_by_email = DomainTool(
    "find_customer_by_email",
    "Look up a customer id by email.",
    obj({"email": string("Email address.")}),
    ops.find_customer_by_email,
)

get_customer_details = DomainTool(
    "get_customer_details",
    "Show a customer's profile, store credit and orders.",
    obj({"customer_id": string("The customer id.")}),
    ops.get_customer_details,
)

get_order_details = DomainTool(
    "get_order_details", "Show an order.", obj({"order_id": _ORDER_ID}), ops.get_order_details
)

search_books = DomainTool(
    "search_books",
    "Search books by words of the title or author.",
    obj({"query": string("Words to look for.")}),
    ops.search_books,
)

cancel_order = DomainTool(
    "cancel_order",
    "Cancel a pending order (after the customer confirmed).",
    obj(
        {
            "order_id": _ORDER_ID,
            "reason": cancel_reason(),
        }
    ),
    ops.cancel_order,
    mutates=True,
)

change_order_address = DomainTool(
    "change_order_address",
    "Change the shipping address of a pending order (after the customer confirmed).",
    obj(
        {
            "order_id": _ORDER_ID,
            "street": string("Street and number."),
            "city": string("City."),
            "country": string("Country code, e.g. 'FR'."),
            "zip": string("Postal code."),
        }
    ),
    ops.change_order_address,
    mutates=True,
)

DEMO_TOOLS = Toolset(
    [
        find_customer_by_email,
        get_customer_details,
        get_order_details,
        search_books,
        cancel_order,
        change_order_address,
        calculate,
        think,
        transfer_to_human_agents,
    ]
)
