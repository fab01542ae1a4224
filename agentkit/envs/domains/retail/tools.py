"""The retail tools, each an agentkit tool (:class:`~agentkit.envs.domain.DomainTool`) named like
tau-bench's, with its parameters, types, enums and required lists; the descriptions are this
project's own wording. What each one does to the database is in :mod:`.operations`.
``RETAIL_TOOLS`` groups them in tau-bench's order."""

from __future__ import annotations

from agentkit.envs.domain import DomainTool
from agentkit.toolset import Toolset

from ..common import (
    calculate,
    cancel_reason,
    obj,
    string,
    string_list,
    think,
    transfer_to_human_agents,
)
from . import operations as ops

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


cancel_pending_order = DomainTool(
    "cancel_pending_order",
    "Cancel a pending order and refund every payment of it (gift cards at once, other "
    "methods in 5-7 business days). Only after the user has explicitly confirmed the "
    "order details and the reason.",
    obj(
        {
            "order_id": _ORDER_ID,
            "reason": cancel_reason(),
        }
    ),
    ops.cancel_pending_order,
    mutates=True,
)

exchange_delivered_order_items = DomainTool(
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
    ops.exchange_delivered_order_items,
    mutates=True,
)

find_user_id_by_email = DomainTool(
    "find_user_id_by_email",
    "Look up a user id by email address.",
    obj({"email": string("The email address, e.g. 'someone@example.com'.")}),
    ops.find_user_id_by_email,
)

find_user_id_by_name_zip = DomainTool(
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
    ops.find_user_id_by_name_zip,
)

get_order_details = DomainTool(
    "get_order_details",
    "Show an order: status, items, address, fulfilments and payments.",
    obj({"order_id": _ORDER_ID}),
    ops.get_order_details,
)

get_product_details = DomainTool(
    "get_product_details",
    "Show a product and all of its variants with options, availability and price.",
    obj({"product_id": string("The product id (not an item id), e.g. '6086499569'.")}),
    ops.get_product_details,
)

get_user_details = DomainTool(
    "get_user_details",
    "Show a user's profile: name, address, email, payment methods and orders.",
    obj({"user_id": _USER_ID}),
    ops.get_user_details,
)

list_all_product_types = DomainTool(
    "list_all_product_types",
    "List the name and product id of every product type in the store.",
    obj({}),
    ops.list_all_product_types,
)

modify_pending_order_address = DomainTool(
    "modify_pending_order_address",
    "Change the shipping address of a pending order. Only after the user has explicitly "
    "confirmed the new address.",
    _address("order_id", _ORDER_ID),
    ops.modify_pending_order_address,
    mutates=True,
)

modify_pending_order_items = DomainTool(
    "modify_pending_order_items",
    "Swap items of a pending order for other available variants of the same products; "
    "allowed once per order. The price difference is charged or refunded with the given "
    "method. Only after the user has explicitly confirmed every item to change.",
    obj(
        {
            "order_id": _ORDER_ID,
            "item_ids": string_list("Ids of the items to change; repeats allowed."),
            "new_item_ids": string_list("Ids of the new variants, in the same order as item_ids."),
            "payment_method_id": _PAYMENT,
        }
    ),
    ops.modify_pending_order_items,
    mutates=True,
)

modify_pending_order_payment = DomainTool(
    "modify_pending_order_payment",
    "Pay a pending order with a different payment method. Only after the user has "
    "explicitly confirmed the change.",
    obj({"order_id": _ORDER_ID, "payment_method_id": _PAYMENT}),
    ops.modify_pending_order_payment,
    mutates=True,
)

modify_user_address = DomainTool(
    "modify_user_address",
    "Change the default address of a user. Only after the user has explicitly confirmed "
    "the new address.",
    _address("user_id", _USER_ID),
    ops.modify_user_address,
    mutates=True,
)

return_delivered_order_items = DomainTool(
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
    ops.return_delivered_order_items,
    mutates=True,
)

RETAIL_TOOLS = Toolset(
    [
        calculate,
        cancel_pending_order,
        exchange_delivered_order_items,
        find_user_id_by_email,
        find_user_id_by_name_zip,
        get_order_details,
        get_product_details,
        get_user_details,
        list_all_product_types,
        modify_pending_order_address,
        modify_pending_order_items,
        modify_pending_order_payment,
        modify_user_address,
        return_delivered_order_items,
        think,
        transfer_to_human_agents,
    ]
)
