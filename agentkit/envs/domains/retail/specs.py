"""Schemas of the retail tools: tau-bench's names, parameters, types, enums and required lists;
the descriptions are this project's own wording."""

from __future__ import annotations

from agentkit.envs.domain import ToolSpec

from ..common import common_specs, obj, spec_builder, string, string_list
from . import tools as t

_ORDER_ID = string("The order id, starting with '#', e.g. '#W0000000'.")
_USER_ID = string("The user id, e.g. 'sara_doe_496'.")
_PAYMENT = string("A payment method id from the user's profile, e.g. 'gift_card_0000000'.")


def _address(first: str, first_schema: dict[str, object]) -> dict[str, object]:
    return obj(
        {
            first: first_schema,
            "address1": string("First address line, e.g. '123 Main St'."),
            "address2": string("Second address line, e.g. 'Apt 1'; may be empty."),
            "city": string("City, e.g. 'San Francisco'."),
            "state": string("State, e.g. 'CA'."),
            "country": string("Country, e.g. 'USA'."),
            "zip": string("Zip code, e.g. '12345'."),
        }
    )


def retail_specs() -> list[ToolSpec]:
    spec = spec_builder(t)

    common = {s.name: s for s in common_specs()}
    return [
        common["calculate"],
        spec(
            "cancel_pending_order",
            "Cancel a pending order and refund every payment of it (gift cards at once, other "
            "methods in 5-7 business days). Only after the user has explicitly confirmed the "
            "order details and the reason.",
            obj(
                {
                    "order_id": _ORDER_ID,
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
            "exchange_delivered_order_items",
            "Exchange items of a delivered order for other available variants of the same "
            "products; the price difference is charged or refunded with the given method. Only "
            "after the user has explicitly confirmed every item to exchange.",
            obj(
                {
                    "order_id": _ORDER_ID,
                    "item_ids": string_list("Ids of the items to exchange; repeats allowed."),
                    "new_item_ids": string_list(
                        "Ids of the replacement variants, in the same order as item_ids."
                    ),
                    "payment_method_id": _PAYMENT,
                }
            ),
            mutates=True,
        ),
        spec(
            "find_user_id_by_email",
            "Look up a user id by email address.",
            obj({"email": string("The email address, e.g. 'someone@example.com'.")}),
        ),
        spec(
            "find_user_id_by_name_zip",
            "Look up a user id by first name, last name and zip code. Prefer the email lookup when "
            "the user can give an email.",
            obj(
                {
                    "first_name": string("First name, e.g. 'John'."),
                    "last_name": string("Last name, e.g. 'Doe'."),
                    "zip": string("Zip code, e.g. '12345'."),
                }
            ),
        ),
        spec(
            "get_order_details",
            "Show an order: status, items, address, fulfilments and payments.",
            obj({"order_id": _ORDER_ID}),
        ),
        spec(
            "get_product_details",
            "Show a product and all of its variants with options, availability and price.",
            obj({"product_id": string("The product id (not an item id), e.g. '6086499569'.")}),
        ),
        spec(
            "get_user_details",
            "Show a user's profile: name, address, email, payment methods and orders.",
            obj({"user_id": _USER_ID}),
        ),
        spec(
            "list_all_product_types",
            "List the name and product id of every product type in the store.",
            obj({}),
        ),
        spec(
            "modify_pending_order_address",
            "Change the shipping address of a pending order. Only after the user has explicitly "
            "confirmed the new address.",
            _address("order_id", _ORDER_ID),
            mutates=True,
        ),
        spec(
            "modify_pending_order_items",
            "Swap items of a pending order for other available variants of the same products; "
            "allowed once per order. The price difference is charged or refunded with the given "
            "method. Only after the user has explicitly confirmed every item to change.",
            obj(
                {
                    "order_id": _ORDER_ID,
                    "item_ids": string_list("Ids of the items to change; repeats allowed."),
                    "new_item_ids": string_list(
                        "Ids of the new variants, in the same order as item_ids."
                    ),
                    "payment_method_id": _PAYMENT,
                }
            ),
            mutates=True,
        ),
        spec(
            "modify_pending_order_payment",
            "Pay a pending order with a different payment method. Only after the user has "
            "explicitly confirmed the change.",
            obj({"order_id": _ORDER_ID, "payment_method_id": _PAYMENT}),
            mutates=True,
        ),
        spec(
            "modify_user_address",
            "Change the default address of a user. Only after the user has explicitly confirmed "
            "the new address.",
            _address("user_id", _USER_ID),
            mutates=True,
        ),
        spec(
            "return_delivered_order_items",
            "Request a return of items of a delivered order; the refund goes to the original "
            "payment method or a gift card. Only after the user has explicitly confirmed the "
            "items to return.",
            obj(
                {
                    "order_id": _ORDER_ID,
                    "item_ids": string_list("Ids of the items to return; repeats allowed."),
                    "payment_method_id": string(
                        "Where the refund goes: the original payment method or a gift card id."
                    ),
                }
            ),
            mutates=True,
        ),
        common["think"],
        common["transfer_to_human_agents"],
    ]
