"""What the retail domain's tools do, with tau-bench's arguments, outputs, errors and effects.

``data`` is ``{"orders": ..., "products": ..., "users": ...}`` as loaded from JSON. Read tools
return ``json.dumps`` of the record; writes return the updated record. Checks run in tau-bench's
order and every failing check leaves the database untouched. Money follows tau-bench exactly:
gift-card balances are rounded to cents after each change, the price difference of
``modify_pending_order_items`` is stored unrounded, that of an exchange rounded.
"""

from __future__ import annotations

import json
from typing import Any

CANCEL_REASONS = ("no longer needed", "ordered by mistake")


def _count_problem(order: dict[str, Any], item_ids: list[str]) -> str | None:
    """The first requested id asked for more often than the order holds it, if any."""
    held = [item["item_id"] for item in order["items"]]
    for item_id in item_ids:
        if item_ids.count(item_id) > held.count(item_id):
            return item_id
    return None


def _first_item(order: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(item for item in order["items"] if item["item_id"] == item_id)


def _price_difference(
    products: dict[str, Any], order: dict[str, Any], item_ids: list[str], new_item_ids: list[str]
) -> tuple[float, str | None]:
    """Sum of (new - old) over the pairs, accumulated from int 0 in pair order, or an error."""
    total: float = 0
    for old_id, new_id in zip(item_ids, new_item_ids, strict=False):
        item = _first_item(order, old_id)
        variants = products[item["product_id"]]["variants"]
        if new_id not in variants or not variants[new_id]["available"]:
            return total, f"Error: new item {new_id} not found or available"
        total += variants[new_id]["price"] - item["price"]
    return total, None


def _order_in(
    data: dict[str, Any], order_id: str, status: str, refusal: str
) -> dict[str, Any] | str:
    """The order, if there is one and its status is ``status``; else the error to return."""
    orders = data["orders"]
    if order_id not in orders:
        return "Error: order not found"
    order: dict[str, Any] = orders[order_id]
    return order if order["status"] == status else refusal


def _swap_difference(
    data: dict[str, Any], order: dict[str, Any], item_ids: list[str], new_item_ids: list[str]
) -> float | str:
    """The price difference of swapping ``item_ids`` for ``new_item_ids``, or the error."""
    missing = _count_problem(order, item_ids)
    if missing is not None:
        return f"Error: {missing} not found"
    if len(item_ids) != len(new_item_ids):
        return "Error: the number of items to be exchanged should match"
    diff, error = _price_difference(data["products"], order, item_ids, new_item_ids)
    return error or diff


def _paying_method(
    data: dict[str, Any], order: dict[str, Any], method_id: str, amount: float, what: str
) -> dict[str, Any] | str:
    """The order owner's payment method ``method_id``, if it can pay ``amount``; else the error."""
    methods = data["users"][order["user_id"]]["payment_methods"]
    if method_id not in methods:
        return "Error: payment method not found"
    method: dict[str, Any] = methods[method_id]
    if method["source"] == "gift_card" and method["balance"] < amount:
        return f"Error: insufficient gift card balance to pay for {what}"
    return method


def _address(
    address1: str, address2: str, city: str, state: str, country: str, zip: str
) -> dict[str, str]:
    return {
        "address1": address1,
        "address2": address2,
        "city": city,
        "state": state,
        "country": country,
        "zip": zip,
    }


def _refresh_balance(method: dict[str, Any], change: float) -> None:
    method["balance"] += change
    method["balance"] = round(method["balance"], 2)


def find_user_id_by_email(data: dict[str, Any], email: str) -> str:
    wanted = email.lower()
    for user_id, user in data["users"].items():
        if user["email"].lower() == wanted:
            return str(user_id)
    return "Error: user not found"


def find_user_id_by_name_zip(
    data: dict[str, Any], first_name: str, last_name: str, zip: str
) -> str:
    first, last = first_name.lower(), last_name.lower()
    for user_id, user in data["users"].items():
        name = user["name"]
        if (
            name["first_name"].lower() == first
            and name["last_name"].lower() == last
            and user["address"]["zip"] == zip
        ):
            return str(user_id)
    return "Error: user not found"


def get_user_details(data: dict[str, Any], user_id: str) -> str:
    users = data["users"]
    return json.dumps(users[user_id]) if user_id in users else "Error: user not found"


def get_order_details(data: dict[str, Any], order_id: str) -> str:
    orders = data["orders"]
    return json.dumps(orders[order_id]) if order_id in orders else "Error: order not found"


def get_product_details(data: dict[str, Any], product_id: str) -> str:
    products = data["products"]
    if product_id in products:
        return json.dumps(products[product_id])
    return "Error: product not found"


def list_all_product_types(data: dict[str, Any]) -> str:
    by_name = {product["name"]: product["product_id"] for product in data["products"].values()}
    return json.dumps(dict(sorted(by_name.items())))


def cancel_pending_order(data: dict[str, Any], order_id: str, reason: str) -> str:
    order = _order_in(data, order_id, "pending", "Error: non-pending order cannot be cancelled")
    if isinstance(order, str):
        return order
    if reason not in CANCEL_REASONS:
        return "Error: invalid reason"
    methods = data["users"][order["user_id"]]["payment_methods"]
    refunds = []
    for payment in order["payment_history"]:
        method_id = payment["payment_method_id"]
        refunds.append(
            {
                "transaction_type": "refund",
                "amount": payment["amount"],
                "payment_method_id": method_id,
            }
        )
        if "gift_card" in method_id:
            _refresh_balance(methods[method_id], payment["amount"])
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    order["payment_history"].extend(refunds)
    return json.dumps(order)


def modify_pending_order_address(
    data: dict[str, Any],
    order_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> str:
    order = _order_in(data, order_id, "pending", "Error: non-pending order cannot be modified")
    if isinstance(order, str):
        return order
    order["address"] = _address(address1, address2, city, state, country, zip)
    return json.dumps(order)


def modify_pending_order_payment(
    data: dict[str, Any], order_id: str, payment_method_id: str
) -> str:
    order = _order_in(data, order_id, "pending", "Error: non-pending order cannot be modified")
    if isinstance(order, str):
        return order
    methods = data["users"][order["user_id"]]["payment_methods"]
    if payment_method_id not in methods:
        return "Error: payment method not found"
    history = order["payment_history"]
    if len(history) > 1 or history[0]["transaction_type"] != "payment":
        return "Error: there should be exactly one payment for a pending order"
    old_method_id = history[0]["payment_method_id"]
    if old_method_id == payment_method_id:
        return "Error: the new payment method should be different from the current one"
    amount = history[0]["amount"]
    new_method = methods[payment_method_id]
    if new_method["source"] == "gift_card" and new_method["balance"] < amount:
        return "Error: insufficient gift card balance to pay for the order"
    history.extend(
        [
            {
                "transaction_type": "payment",
                "amount": amount,
                "payment_method_id": payment_method_id,
            },
            {"transaction_type": "refund", "amount": amount, "payment_method_id": old_method_id},
        ]
    )
    if new_method["source"] == "gift_card":
        _refresh_balance(new_method, -amount)
    if "gift_card" in old_method_id:
        _refresh_balance(methods[old_method_id], amount)
    return json.dumps(order)


def modify_pending_order_items(
    data: dict[str, Any],
    order_id: str,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> str:
    order = _order_in(data, order_id, "pending", "Error: non-pending order cannot be modified")
    if isinstance(order, str):
        return order
    diff = _swap_difference(data, order, item_ids, new_item_ids)
    if isinstance(diff, str):
        return diff
    method = _paying_method(data, order, payment_method_id, diff, "the new item")
    if isinstance(method, str):
        return method
    order["payment_history"].append(
        {
            "transaction_type": "payment" if diff > 0 else "refund",
            "amount": abs(diff),
            "payment_method_id": payment_method_id,
        }
    )
    if method["source"] == "gift_card":
        _refresh_balance(method, -diff)
    for old_id, new_id in zip(item_ids, new_item_ids, strict=False):
        item = _first_item(order, old_id)
        variant = data["products"][item["product_id"]]["variants"][new_id]
        item["item_id"] = new_id
        item["price"] = variant["price"]
        item["options"] = variant["options"]
    order["status"] = "pending (item modified)"
    return json.dumps(order)


def return_delivered_order_items(
    data: dict[str, Any], order_id: str, item_ids: list[str], payment_method_id: str
) -> str:
    order = _order_in(data, order_id, "delivered", "Error: non-delivered order cannot be returned")
    if isinstance(order, str):
        return order
    if payment_method_id not in data["users"][order["user_id"]]["payment_methods"]:
        return "Error: payment method not found"
    original = order["payment_history"][0]["payment_method_id"]
    if "gift_card" not in payment_method_id and payment_method_id != original:
        return "Error: payment method should be either the original payment method or a gift card"
    if _count_problem(order, item_ids) is not None:
        return "Error: some item not found"
    order["status"] = "return requested"
    order["return_items"] = sorted(item_ids)
    order["return_payment_method_id"] = payment_method_id
    return json.dumps(order)


def exchange_delivered_order_items(
    data: dict[str, Any],
    order_id: str,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> str:
    refusal = "Error: non-delivered order cannot be exchanged"
    order = _order_in(data, order_id, "delivered", refusal)
    if isinstance(order, str):
        return order
    diff = _swap_difference(data, order, item_ids, new_item_ids)
    if isinstance(diff, str):
        return diff
    diff = round(diff, 2)
    method = _paying_method(data, order, payment_method_id, diff, "the price difference")
    if isinstance(method, str):
        return method
    order["status"] = "exchange requested"
    order["exchange_items"] = sorted(item_ids)
    order["exchange_new_items"] = sorted(new_item_ids)
    order["exchange_payment_method_id"] = payment_method_id
    order["exchange_price_difference"] = diff
    return json.dumps(order)


def modify_user_address(
    data: dict[str, Any],
    user_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> str:
    users = data["users"]
    if user_id not in users:
        return "Error: user not found"
    user = users[user_id]
    user["address"] = _address(address1, address2, city, state, country, zip)
    return json.dumps(user)
