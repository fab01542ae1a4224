"""What the airline domain's tools do, with tau-bench's arguments, outputs, errors and effects.

``data`` is ``{"flights": ..., "reservations": ..., "users": ...}``. tau-bench's quirks are kept
on purpose because its gold databases depend on them: seats are never decremented, a booking
stores the passenger and payment lists as passed, used certificates disappear, cancelling
reverses the whole payment history without any check, a cabin change re-prices the segments
but leaves ``reservation.cabin`` alone, and the one-stop search builds the next day's date
without zero padding.
"""

from __future__ import annotations

import copy
import json
from typing import Any

AIRPORTS = {
    "SFO": "San Francisco",
    "JFK": "New York",
    "LAX": "Los Angeles",
    "ORD": "Chicago",
    "DFW": "Dallas",
    "DEN": "Denver",
    "SEA": "Seattle",
    "ATL": "Atlanta",
    "MIA": "Miami",
    "BOS": "Boston",
    "PHX": "Phoenix",
    "IAH": "Houston",
    "LAS": "Las Vegas",
    "MCO": "Orlando",
    "EWR": "Newark",
    "CLT": "Charlotte",
    "MSP": "Minneapolis",
    "DTW": "Detroit",
    "PHL": "Philadelphia",
    "LGA": "LaGuardia",
}
NEW_RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
CERTIFICATE_IDS = ("certificate_3221322", "certificate_3221323", "certificate_3221324")
BOOKING_TIME = "2024-05-15T15:00:00"
INSURANCE_PER_PASSENGER = 30
PRICE_PER_BAG = 50


def _price_segment(
    data: dict[str, Any], segment: dict[str, Any], cabin: str, passengers: int
) -> str | None:
    """Fill price/origin/destination of a segment from the flight table, or return an error."""
    number = segment["flight_number"]
    if number not in data["flights"]:
        return f"Error: flight {number} not found"
    flight = data["flights"][number]
    if segment["date"] not in flight["dates"]:
        return f"Error: flight {number} not found on date {segment['date']}"
    on_date = flight["dates"][segment["date"]]
    if on_date["status"] != "available":
        return f"Error: flight {number} not available on date {segment['date']}"
    if on_date["available_seats"][cabin] < passengers:
        return f"Error: not enough seats on flight {number}"
    segment["price"] = on_date["prices"][cabin]
    segment["origin"] = flight["origin"]
    segment["destination"] = flight["destination"]
    return None


def _reservation(data: dict[str, Any], reservation_id: str) -> dict[str, Any] | str:
    """The reservation, or the error to return."""
    reservations = data["reservations"]
    if reservation_id not in reservations:
        return "Error: reservation not found"
    reservation: dict[str, Any] = reservations[reservation_id]
    return reservation


def _flight_on(flight: dict[str, Any], date: str) -> dict[str, Any]:
    """A search result: the flight without its date table, merged with one date's entry."""
    result = {key: value for key, value in flight.items() if key != "dates"}
    result.update(flight["dates"][date])
    return result


def get_user_details(data: dict[str, Any], user_id: str) -> str:
    users = data["users"]
    return json.dumps(users[user_id]) if user_id in users else "Error: user not found"


def get_reservation_details(data: dict[str, Any], reservation_id: str) -> str:
    reservations = data["reservations"]
    if reservation_id in reservations:
        return json.dumps(reservations[reservation_id])
    return "Error: user not found"  # sic: tau-bench's message for an unknown reservation


def list_all_airports(data: dict[str, Any]) -> str:
    return json.dumps(AIRPORTS)


def search_direct_flight(data: dict[str, Any], origin: str, destination: str, date: str) -> str:
    found = [
        _flight_on(flight, date)
        for flight in data["flights"].values()
        if flight["origin"] == origin
        and flight["destination"] == destination
        and date in flight["dates"]
        and flight["dates"][date]["status"] == "available"
    ]
    return json.dumps(found)


def search_onestop_flight(data: dict[str, Any], origin: str, destination: str, date: str) -> str:
    flights = data["flights"].values()
    found = []
    for first in flights:
        if first["origin"] != origin:
            continue
        for second in flights:
            if second["destination"] != destination or first["destination"] != second["origin"]:
                continue
            overnight = "+1" in first["scheduled_arrival_time_est"]
            next_date = f"2024-05-{int(date[-2:]) + 1}" if overnight else date
            if first["scheduled_arrival_time_est"] > second["scheduled_departure_time_est"]:
                continue
            if date not in first["dates"] or next_date not in second["dates"]:
                continue
            if (
                first["dates"][date]["status"] != "available"
                or second["dates"][next_date]["status"] != "available"
            ):
                continue
            leg1 = _flight_on(first, date)
            leg1["date"] = date
            leg2 = _flight_on(second, date)  # sic: tau-bench reads the first leg's date here
            leg2["date"] = next_date
            found.append([leg1, leg2])
    return json.dumps(found)


def book_reservation(
    data: dict[str, Any],
    user_id: str,
    origin: str,
    destination: str,
    flight_type: str,
    cabin: str,
    flights: list[dict[str, Any]],
    passengers: list[dict[str, Any]],
    payment_methods: list[dict[str, Any]],
    total_baggages: int,
    nonfree_baggages: int,
    insurance: str,
) -> str:
    reservations, users = data["reservations"], data["users"]
    if user_id not in users:
        return "Error: user not found"
    user = users[user_id]
    reservation_id = next(
        (rid for rid in NEW_RESERVATION_IDS[:-1] if rid not in reservations),
        NEW_RESERVATION_IDS[-1],
    )
    segments = copy.deepcopy(flights)
    reservation: dict[str, Any] = {
        "reservation_id": reservation_id,
        "user_id": user_id,
        "origin": origin,
        "destination": destination,
        "flight_type": flight_type,
        "cabin": cabin,
        "flights": segments,
        "passengers": passengers,
        "payment_history": payment_methods,
        "created_at": BOOKING_TIME,
        "total_baggages": total_baggages,
        "nonfree_baggages": nonfree_baggages,
        "insurance": insurance,
    }
    total: Any = 0
    for segment in segments:
        error = _price_segment(data, segment, cabin, len(passengers))
        if error:
            return error
        total += segment["price"] * len(passengers)
    if insurance == "yes":
        total += INSURANCE_PER_PASSENGER * len(passengers)
    total += PRICE_PER_BAG * nonfree_baggages
    methods = user["payment_methods"]
    for payment in payment_methods:
        payment_id, amount = payment["payment_id"], payment["amount"]
        if payment_id not in methods:
            return f"Error: payment method {payment_id} not found"
        if methods[payment_id]["source"] in ("gift_card", "certificate") and (
            methods[payment_id]["amount"] < amount
        ):
            return f"Error: not enough balance in payment method {payment_id}"
    paid = sum(payment["amount"] for payment in payment_methods)
    if paid != total:
        return f"Error: payment amount does not add up, total price is {total}, but paid {paid}"
    for payment in payment_methods:
        payment_id = payment["payment_id"]
        source = methods[payment_id]["source"]
        if source == "gift_card":
            methods[payment_id]["amount"] -= payment["amount"]
        elif source == "certificate":
            del methods[payment_id]
    reservations[reservation_id] = reservation
    user["reservations"].append(reservation_id)
    return json.dumps(reservation)


def cancel_reservation(data: dict[str, Any], reservation_id: str) -> str:
    reservation = _reservation(data, reservation_id)
    if isinstance(reservation, str):
        return reservation
    history = reservation["payment_history"]
    history.extend([{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in history])
    reservation["status"] = "cancelled"
    return json.dumps(reservation)


def _charge_method(
    data: dict[str, Any], reservation: dict[str, Any], payment_id: str, price: Any
) -> tuple[dict[str, Any] | None, str | None]:
    methods = data["users"][reservation["user_id"]]["payment_methods"]
    if payment_id not in methods:
        return None, "Error: payment method not found"
    method = methods[payment_id]
    if method["source"] == "certificate":
        return None, "Error: certificate cannot be used to update reservation"
    if method["source"] == "gift_card" and method["amount"] < price:
        return None, "Error: gift card balance is not enough"
    return method, None


def update_reservation_baggages(
    data: dict[str, Any],
    reservation_id: str,
    total_baggages: int,
    nonfree_baggages: int,
    payment_id: str,
) -> str:
    reservation = _reservation(data, reservation_id)
    if isinstance(reservation, str):
        return reservation
    price = PRICE_PER_BAG * max(0, nonfree_baggages - reservation["nonfree_baggages"])
    method, error = _charge_method(data, reservation, payment_id, price)
    if method is None:
        return error or "Error: payment method not found"
    reservation["total_baggages"] = total_baggages
    reservation["nonfree_baggages"] = nonfree_baggages
    if method["source"] == "gift_card":
        method["amount"] -= price
    if price != 0:
        reservation["payment_history"].append({"payment_id": payment_id, "amount": price})
    return json.dumps(reservation)


def update_reservation_flights(
    data: dict[str, Any],
    reservation_id: str,
    cabin: str,
    flights: list[dict[str, Any]],
    payment_id: str,
) -> str:
    reservation = _reservation(data, reservation_id)
    if isinstance(reservation, str):
        return reservation
    passengers = len(reservation["passengers"])
    segments = copy.deepcopy(flights)
    total: Any = 0
    for segment in segments:
        kept = [
            old
            for old in reservation["flights"]
            if old["flight_number"] == segment["flight_number"]
            and old["date"] == segment["date"]
            and cabin == reservation["cabin"]
        ]
        if kept:
            segment["price"] = kept[0]["price"]
            segment["origin"] = kept[0]["origin"]
            segment["destination"] = kept[0]["destination"]
            total += kept[0]["price"] * passengers
            continue
        error = _price_segment(data, segment, cabin, passengers)
        if error:
            return error
        total += segment["price"] * passengers
    total -= sum(old["price"] for old in reservation["flights"]) * passengers
    method, error = _charge_method(data, reservation, payment_id, total)
    if method is None:
        return error or "Error: payment method not found"
    if method["source"] == "gift_card":
        method["amount"] -= total
    reservation["flights"] = segments
    if total != 0:
        reservation["payment_history"].append({"payment_id": payment_id, "amount": total})
    return json.dumps(reservation)


def update_reservation_passengers(
    data: dict[str, Any], reservation_id: str, passengers: list[dict[str, Any]]
) -> str:
    reservation = _reservation(data, reservation_id)
    if isinstance(reservation, str):
        return reservation
    if len(passengers) != len(reservation["passengers"]):
        return "Error: number of passengers does not match"
    reservation["passengers"] = passengers
    return json.dumps(reservation)


def send_certificate(data: dict[str, Any], user_id: str, amount: float) -> str | None:
    users = data["users"]
    if user_id not in users:
        return "Error: user not found"
    methods = users[user_id]["payment_methods"]
    for payment_id in CERTIFICATE_IDS:
        if payment_id not in methods:
            methods[payment_id] = {"source": "certificate", "amount": amount, "id": payment_id}
            return f"Certificate {payment_id} added to user {user_id} with amount {amount}."
    return None  # tau-bench returns nothing once three certificates exist
