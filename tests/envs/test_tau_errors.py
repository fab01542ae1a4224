"""Tool errors give tau-bench's error strings and leave the database unchanged; a few of
tau-bench's numeric and ordering quirks are reproduced."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentkit.envs import Action, Domain, load_domain, replay
from agentkit.tool import RunContext, ToolStatus
from tests.shared import shared_file


@pytest.fixture(scope="module")
def retail() -> Domain:
    return load_domain("retail", shared_file("taubench", "retail"))


@pytest.fixture(scope="module")
def airline() -> Domain:
    return load_domain("airline", shared_file("taubench", "airline"))


def _order_with(domain: Domain, status: str, source: str | None = None) -> dict[str, Any]:
    data = domain.new_episode().data
    for order in data["orders"].values():
        methods = data["users"][order["user_id"]]["payment_methods"]
        if order["status"] == status and (
            source is None or any(m["source"] == source for m in methods.values())
        ):
            return dict(order)
    raise AssertionError(f"no {status} order")


async def _run(domain: Domain, *actions: tuple[str, dict[str, Any]]) -> tuple[list[str], str]:
    result = await replay(domain, [Action(name=n, kwargs=k) for n, k in actions])
    return result.observations, result.db_hash


RETAIL_ERRORS = [
    (
        "cancel_pending_order",
        {"order_id": "#W0000000", "reason": "no longer needed"},
        "Error: order not found",
    ),
    ("get_order_details", {"order_id": "#W0000000"}, "Error: order not found"),
    ("get_user_details", {"user_id": "nobody_1"}, "Error: user not found"),
    ("get_product_details", {"product_id": "1"}, "Error: product not found"),
    ("find_user_id_by_email", {"email": "no@where.example"}, "Error: user not found"),
    ("calculate", {"expression": "import os"}, "Error: invalid characters in expression"),
    ("calculate", {"expression": "1 / 0"}, "Error: division by zero"),
    (
        "cancel_pending_order",
        {"order_id": "#W0000000"},
        "Error: CancelPendingOrder.invoke() missing 1 required positional argument: 'reason'",
    ),
    (
        "get_order_details",
        {"order_id": "#W0000000", "extra": 1},
        "Error: GetOrderDetails.invoke() got an unexpected keyword argument 'extra'",
    ),
    ("refund_everything", {}, "Unknown action refund_everything"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "kwargs", "expected"), RETAIL_ERRORS)
async def test_retail_error_strings(
    retail: Domain, name: str, kwargs: dict[str, Any], expected: str
) -> None:
    initial = retail.new_episode().db_hash()
    observations, final = await _run(retail, (name, kwargs))
    assert observations == [expected]
    assert final == initial


@pytest.mark.anyio
async def test_cancelling_a_delivered_order_fails_and_changes_nothing(retail: Domain) -> None:
    order = _order_with(retail, "delivered")
    initial = retail.new_episode().db_hash()
    observations, final = await _run(
        retail,
        ("cancel_pending_order", {"order_id": order["order_id"], "reason": "ordered by mistake"}),
    )
    assert observations == ["Error: non-pending order cannot be cancelled"]
    assert final == initial


@pytest.mark.anyio
async def test_status_gates_of_pending_and_delivered_orders(retail: Domain) -> None:
    pending = _order_with(retail, "pending")
    delivered = _order_with(retail, "delivered")
    pay = pending["payment_history"][0]["payment_method_id"]
    initial = retail.new_episode().db_hash()
    observations, final = await _run(
        retail,
        ("cancel_pending_order", {"order_id": pending["order_id"], "reason": "too expensive"}),
        (
            "return_delivered_order_items",
            {"order_id": pending["order_id"], "item_ids": [], "payment_method_id": pay},
        ),
        (
            "exchange_delivered_order_items",
            {
                "order_id": pending["order_id"],
                "item_ids": [],
                "new_item_ids": [],
                "payment_method_id": pay,
            },
        ),
        (
            "modify_pending_order_address",
            {
                "order_id": delivered["order_id"],
                "address1": "a",
                "address2": "",
                "city": "c",
                "state": "s",
                "country": "USA",
                "zip": "1",
            },
        ),
        (
            "modify_pending_order_payment",
            {"order_id": pending["order_id"], "payment_method_id": "bitcoin_1"},
        ),
        (
            "modify_pending_order_payment",
            {"order_id": pending["order_id"], "payment_method_id": pay},
        ),
        (
            "return_delivered_order_items",
            {
                "order_id": delivered["order_id"],
                "item_ids": ["0"],
                "payment_method_id": "bitcoin_1",
            },
        ),
        (
            "return_delivered_order_items",
            {
                "order_id": delivered["order_id"],
                "item_ids": ["0"],
                "payment_method_id": delivered["payment_history"][0]["payment_method_id"],
            },
        ),
    )
    assert observations == [
        "Error: invalid reason",
        "Error: non-delivered order cannot be returned",
        "Error: non-delivered order cannot be exchanged",
        "Error: non-pending order cannot be modified",
        "Error: payment method not found",
        "Error: the new payment method should be different from the current one",
        "Error: payment method not found",
        "Error: some item not found",
    ]
    assert final == initial


@pytest.mark.anyio
async def test_cancel_refunds_to_gift_card_and_rounds_balance(retail: Domain) -> None:
    state = retail.new_episode()
    order = next(
        o
        for o in state.data["orders"].values()
        if o["status"] == "pending" and "gift_card" in o["payment_history"][0]["payment_method_id"]
    )
    method_id = order["payment_history"][0]["payment_method_id"]
    balance = state.data["users"][order["user_id"]]["payment_methods"][method_id]["balance"]
    paid = order["payment_history"][0]["amount"]
    tool = next(t for t in retail.tools() if t.name == "cancel_pending_order")
    outcome = await tool.call(
        {"order_id": order["order_id"], "reason": "no longer needed"}, RunContext(deps=state)
    )
    assert outcome.status is ToolStatus.OK
    shown = json.loads(outcome.output)
    assert shown["status"] == "cancelled"
    assert shown["payment_history"][-1] == {
        "transaction_type": "refund",
        "amount": paid,
        "payment_method_id": method_id,
    }
    new_balance = state.data["users"][order["user_id"]]["payment_methods"][method_id]["balance"]
    assert new_balance == round(balance + paid, 2)
    assert list(shown)[-1] == "cancel_reason"  # key order of tau-bench's json.dumps output


@pytest.mark.anyio
async def test_tool_error_is_an_error_outcome_with_the_same_text(retail: Domain) -> None:
    tool = next(t for t in retail.tools() if t.name == "get_order_details")
    outcome = await tool.call({"order_id": "#nope"}, RunContext(deps=retail.new_episode()))
    assert outcome.status is ToolStatus.ERROR
    assert outcome.output == "Error: order not found"
    wrong_deps = await tool.call({"order_id": "#nope"}, RunContext(deps=None))
    assert wrong_deps.status is ToolStatus.ERROR
    assert "EpisodeState" in wrong_deps.output


AIRLINE_ERRORS = [
    ("get_reservation_details", {"reservation_id": "ZZZZZZ"}, "Error: user not found"),
    ("cancel_reservation", {"reservation_id": "ZZZZZZ"}, "Error: reservation not found"),
    (
        "update_reservation_passengers",
        {"reservation_id": "ZZZZZZ", "passengers": []},
        "Error: reservation not found",
    ),
    ("send_certificate", {"user_id": "nobody_1", "amount": 100}, "Error: user not found"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "kwargs", "expected"), AIRLINE_ERRORS)
async def test_airline_error_strings(
    airline: Domain, name: str, kwargs: dict[str, Any], expected: str
) -> None:
    initial = airline.new_episode().db_hash()
    observations, final = await _run(airline, (name, kwargs))
    assert observations == [expected]
    assert final == initial


@pytest.mark.anyio
async def test_airline_payment_errors_leave_the_database_unchanged(airline: Domain) -> None:
    data = airline.new_episode().data
    reservation = next(r for r in data["reservations"].values() if r["passengers"])
    user = data["users"][reservation["user_id"]]
    rid = reservation["reservation_id"]
    initial = airline.new_episode().db_hash()
    observations, final = await _run(
        airline,
        (
            "update_reservation_baggages",
            {
                "reservation_id": rid,
                "total_baggages": 9,
                "nonfree_baggages": 9,
                "payment_id": "cash_1",
            },
        ),
        (
            "update_reservation_passengers",
            {
                "reservation_id": rid,
                "passengers": [
                    *reservation["passengers"],
                    {"first_name": "A", "last_name": "B", "dob": "2000-01-01"},
                ],
            },
        ),
        (
            "book_reservation",
            {
                "user_id": user["user_id"] if "user_id" in user else reservation["user_id"],
                "origin": "JFK",
                "destination": "LAX",
                "flight_type": "one_way",
                "cabin": "economy",
                "flights": [],
                "passengers": [{"first_name": "A", "last_name": "B", "dob": "2000-01-01"}],
                "payment_methods": [{"payment_id": "cash_1", "amount": 0}],
                "total_baggages": 0,
                "nonfree_baggages": 0,
                "insurance": "no",
            },
        ),
    )
    assert observations == [
        "Error: payment method not found",
        "Error: number of passengers does not match",
        "Error: payment method cash_1 not found",
    ]
    assert final == initial


@pytest.mark.anyio
async def test_send_certificate_keeps_int_and_float_apart_and_stops_after_three(
    airline: Domain,
) -> None:
    user_id = next(iter(airline.new_episode().data["users"]))
    as_int, hash_int = await _run(
        airline, ("send_certificate", {"user_id": user_id, "amount": 150})
    )
    as_float, hash_float = await _run(
        airline, ("send_certificate", {"user_id": user_id, "amount": 150.0})
    )
    assert as_int == [f"Certificate certificate_3221322 added to user {user_id} with amount 150."]
    assert as_float == [
        f"Certificate certificate_3221322 added to user {user_id} with amount 150.0."
    ]
    assert hash_int != hash_float
    four, _ = await _run(airline, *[("send_certificate", {"user_id": user_id, "amount": 10})] * 4)
    assert [o.split(" ")[1] for o in four[:3]] == [
        "certificate_3221322",
        "certificate_3221323",
        "certificate_3221324",
    ]
    assert four[3].startswith("Error: ")  # tau-bench crashes here; we report it


@pytest.mark.anyio
async def test_cancel_reservation_reverses_history_without_checks(airline: Domain) -> None:
    state = airline.new_episode()
    reservation = next(iter(state.data["reservations"].values()))
    before = list(reservation["payment_history"])
    rid = reservation["reservation_id"]
    await replay(
        airline, [Action(name="cancel_reservation", kwargs={"reservation_id": rid})] * 2, state
    )
    after = state.data["reservations"][rid]["payment_history"]
    negated = [{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in before]
    assert after == before + negated + [
        {"payment_id": p["payment_id"], "amount": -p["amount"]} for p in before + negated
    ]
    assert state.data["reservations"][rid]["status"] == "cancelled"
