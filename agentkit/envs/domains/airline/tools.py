"""The airline tools, each an agentkit tool (:class:`~agentkit.envs.domain.DomainTool`) named like
tau-bench's, with its parameters, types, enums and required lists; the descriptions are this
project's own wording. What each one does to the database is in :mod:`.operations`.
``AIRLINE_TOOLS`` groups them in tau-bench's order."""

from __future__ import annotations

from typing import Any

from agentkit.envs.domain import DomainTool
from agentkit.toolset import Toolset

from ..common import calculate, obj, string, think, transfer_to_human_agents
from . import operations as ops

_RESERVATION_ID = string("The reservation id, e.g. '8JX2WO'.")
_USER_ID = string("The user id, e.g. 'sara_doe_496'.")
_CABIN = {
    "type": "string",
    "enum": ["basic_economy", "economy", "business"],
    "description": "The cabin class.",
}
_AIRPORT = "IATA code of the {} airport, e.g. '{}'."
_DATE = string("Date of the flight as 'YYYY-MM-DD', e.g. '2024-05-01'.")
_ROUTE_ON_DATE = obj(
    {
        "origin": string(_AIRPORT.format("origin", "JFK")),
        "destination": string(_AIRPORT.format("destination", "LAX")),
        "date": _DATE,
    }
)


def _segments(description: str) -> dict[str, Any]:
    return {
        "type": "array",
        "description": description,
        "items": obj(
            {
                "flight_number": string("Flight number, e.g. 'HAT001'."),
                "date": string("Date of this segment as 'YYYY-MM-DD', e.g. '2024-05-01'."),
            }
        ),
    }


def _passengers(description: str) -> dict[str, Any]:
    return {
        "type": "array",
        "description": description,
        "items": obj(
            {
                "first_name": string("First name, e.g. 'Noah'."),
                "last_name": string("Last name, e.g. 'Brown'."),
                "dob": string("Date of birth as 'YYYY-MM-DD', e.g. '1990-01-01'."),
            }
        ),
    }


_PAYMENT = string("A payment method id from the user's profile, e.g. 'credit_card_7815826'.")

book_reservation = DomainTool(
    "book_reservation",
    "Book a new reservation for a user. Only after the user has explicitly confirmed every detail.",
    obj(
        {
            "user_id": _USER_ID,
            "origin": string(_AIRPORT.format("origin", "SFO")),
            "destination": string(_AIRPORT.format("destination", "JFK")),
            "flight_type": {
                "type": "string",
                "enum": ["one_way", "round_trip"],
                "description": "One way or round trip.",
            },
            "cabin": _CABIN,
            "flights": _segments(
                "Every segment of the trip, including the return segments of a round trip."
            ),
            "passengers": _passengers("Everyone travelling on this reservation."),
            "payment_methods": {
                "type": "array",
                "description": "How the total is paid; the amounts must add up to it.",
                "items": obj(
                    {
                        "payment_id": string("Payment method id, e.g. 'credit_card_7815826'."),
                        "amount": {
                            "type": "number",
                            "description": "Amount charged to this method.",
                        },
                    }
                ),
            },
            "total_baggages": {
                "type": "integer",
                "description": "Number of checked bags.",
            },
            "nonfree_baggages": {
                "type": "integer",
                "description": "Number of checked bags that are paid for.",
            },
            "insurance": {
                "type": "string",
                "enum": ["yes", "no"],
                "description": "Whether travel insurance is bought.",
            },
        }
    ),
    ops.book_reservation,
    mutates=True,
)

cancel_reservation = DomainTool(
    "cancel_reservation",
    "Cancel a whole reservation and refund its payments.",
    obj({"reservation_id": _RESERVATION_ID}),
    ops.cancel_reservation,
    mutates=True,
)

get_reservation_details = DomainTool(
    "get_reservation_details",
    "Show a reservation: flights, passengers, payments, baggage and insurance.",
    obj({"reservation_id": _RESERVATION_ID}),
    ops.get_reservation_details,
)

get_user_details = DomainTool(
    "get_user_details",
    "Show a user's profile: payment methods, saved passengers, membership and reservations.",
    obj({"user_id": _USER_ID}),
    ops.get_user_details,
)

list_all_airports = DomainTool(
    "list_all_airports",
    "List the airport codes served and their cities.",
    obj({}),
    ops.list_all_airports,
)

search_direct_flight = DomainTool(
    "search_direct_flight",
    "Find direct flights between two airports on a date.",
    _ROUTE_ON_DATE,
    ops.search_direct_flight,
)

search_onestop_flight = DomainTool(
    "search_onestop_flight",
    "Find connections with exactly one stop between two airports on a date.",
    _ROUTE_ON_DATE,
    ops.search_onestop_flight,
)

send_certificate = DomainTool(
    "send_certificate",
    "Give a user a travel certificate, e.g. as compensation; only when the user is "
    "entitled to it and asks for it.",
    obj(
        {
            "user_id": _USER_ID,
            "amount": {"type": "number", "description": "Value of the certificate."},
        }
    ),
    ops.send_certificate,
    mutates=True,
)

update_reservation_baggages = DomainTool(
    "update_reservation_baggages",
    "Change the checked bags of a reservation. Only after the user has explicitly "
    "confirmed the change.",
    obj(
        {
            "reservation_id": _RESERVATION_ID,
            "total_baggages": {
                "type": "integer",
                "description": "New total number of checked bags.",
            },
            "nonfree_baggages": {
                "type": "integer",
                "description": "New number of paid checked bags.",
            },
            "payment_id": _PAYMENT,
        }
    ),
    ops.update_reservation_baggages,
    mutates=True,
)

update_reservation_flights = DomainTool(
    "update_reservation_flights",
    "Change the cabin or the flights of a reservation. Only after the user has explicitly "
    "confirmed the change.",
    obj(
        {
            "reservation_id": _RESERVATION_ID,
            "cabin": _CABIN,
            "flights": _segments(
                "Every segment of the updated reservation, including unchanged ones."
            ),
            "payment_id": _PAYMENT,
        }
    ),
    ops.update_reservation_flights,
    mutates=True,
)

update_reservation_passengers = DomainTool(
    "update_reservation_passengers",
    "Replace the passenger details of a reservation; the number of passengers cannot "
    "change. Only after the user has explicitly confirmed the change.",
    obj(
        {
            "reservation_id": _RESERVATION_ID,
            "passengers": _passengers("The passengers, as many as the reservation has."),
        }
    ),
    ops.update_reservation_passengers,
    mutates=True,
)

AIRLINE_TOOLS = Toolset(
    [
        book_reservation,
        calculate,
        cancel_reservation,
        get_reservation_details,
        get_user_details,
        list_all_airports,
        search_direct_flight,
        search_onestop_flight,
        send_certificate,
        think,
        transfer_to_human_agents,
        update_reservation_baggages,
        update_reservation_flights,
        update_reservation_passengers,
    ]
)
