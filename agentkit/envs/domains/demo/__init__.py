"""A small bookshop domain whose data this project generates, so examples run anywhere."""

from __future__ import annotations

from agentkit.envs.domain import Domain, LoadedData, ToolSpec
from agentkit.envs.tasks import Task

from ..common import common_specs, obj, spec_builder, string
from . import tools as t
from .data import generate, tasks

POLICY = """# Bookshop support policy

You help customers of an online bookshop with their orders.

- Before acting on an account, identify the customer by email with find_customer_by_email.
- Only act on orders that belong to the identified customer.
- Only pending orders can be cancelled or have their address changed; shipped, delivered and
  cancelled orders cannot. The reason for a cancellation is "no longer needed" or
  "ordered by mistake".
- Before any change, state what you will do and get an explicit "yes" from the customer.
- Orders paid with store credit are refunded to store credit at once; card payments are
  refunded within 5 business days.
- Give prices exactly as they appear in the records. Do not make up information.
- If a request is outside this policy, transfer the customer to a human agent.
"""


def demo_specs() -> list[ToolSpec]:
    order_id = string("The order id, e.g. '#D5000'.")

    spec = spec_builder(t)

    common = {s.name: s for s in common_specs()}
    return [
        spec(
            "find_customer_by_email",
            "Look up a customer id by email.",
            obj({"email": string("Email address.")}),
        ),
        spec(
            "get_customer_details",
            "Show a customer's profile, store credit and orders.",
            obj({"customer_id": string("The customer id.")}),
        ),
        spec("get_order_details", "Show an order.", obj({"order_id": order_id})),
        spec(
            "search_books",
            "Search books by words of the title or author.",
            obj({"query": string("Words to look for.")}),
        ),
        spec(
            "cancel_order",
            "Cancel a pending order (after the customer confirmed).",
            obj(
                {
                    "order_id": order_id,
                    "reason": {
                        "type": "string",
                        "enum": ["no longer needed", "ordered by mistake"],
                        "description": "Why the order is cancelled.",
                    },
                }
            ),
            mutates=True,
        ),
        spec(
            "change_order_address",
            "Change the shipping address of a pending order (after the customer confirmed).",
            obj(
                {
                    "order_id": order_id,
                    "street": string("Street and number."),
                    "city": string("City."),
                    "country": string("Country code, e.g. 'FR'."),
                    "zip": string("Postal code."),
                }
            ),
            mutates=True,
        ),
        common["calculate"],
        common["think"],
        common["transfer_to_human_agents"],
    ]


def load() -> Domain:
    data = generate()
    return Domain(
        name="demo",
        policy=POLICY,
        specs=demo_specs(),
        data=LoadedData.from_objects(data),
        tasks=[Task.model_validate(task) for task in tasks(data)],
    )


__all__ = ["POLICY", "demo_specs", "generate", "load"]
