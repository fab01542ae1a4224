"""What the demo bookshop's tools do, in tau-bench's style: ``fn(data, **kwargs) -> str``."""

from __future__ import annotations

import json
from typing import Any

CANCEL_REASONS = ("no longer needed", "ordered by mistake")


def find_customer_by_email(data: dict[str, Any], email: str) -> str:
    for customer_id, customer in data["customers"].items():
        if customer["email"].lower() == email.lower():
            return str(customer_id)
    return "Error: customer not found"


def get_customer_details(data: dict[str, Any], customer_id: str) -> str:
    customers = data["customers"]
    if customer_id not in customers:
        return "Error: customer not found"
    return json.dumps(customers[customer_id])


def get_order_details(data: dict[str, Any], order_id: str) -> str:
    orders = data["orders"]
    return json.dumps(orders[order_id]) if order_id in orders else "Error: order not found"


def search_books(data: dict[str, Any], query: str) -> str:
    words = query.lower().split()
    found = [
        book
        for book in data["books"].values()
        if all(w in (book["title"] + " " + book["author"]).lower() for w in words)
    ]
    return json.dumps(found)


def _pending_order(data: dict[str, Any], order_id: str, action: str) -> dict[str, Any] | str:
    """The order, if it exists and is pending; else the error to return."""
    orders = data["orders"]
    if order_id not in orders:
        return "Error: order not found"
    order: dict[str, Any] = orders[order_id]
    if order["status"] != "pending":
        return f"Error: a {order['status']} order cannot be {action}"
    return order


def cancel_order(data: dict[str, Any], order_id: str, reason: str) -> str:
    order = _pending_order(data, order_id, "cancelled")
    if isinstance(order, str):
        return order
    if reason not in CANCEL_REASONS:
        return f"Error: reason must be one of {', '.join(CANCEL_REASONS)}"
    if order["paid_with"] == "store_credit":
        customer = data["customers"][order["customer_id"]]
        customer["store_credit"] = round(customer["store_credit"] + order["total"], 2)
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    return json.dumps(order)


def change_order_address(
    data: dict[str, Any], order_id: str, street: str, city: str, country: str, zip: str
) -> str:
    order = _pending_order(data, order_id, "changed")
    if isinstance(order, str):
        return order
    order["address"] = {"street": street, "city": city, "country": country, "zip": zip}
    return json.dumps(order)
