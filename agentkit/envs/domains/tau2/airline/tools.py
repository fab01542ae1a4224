"""tau2's airline tools (``AirlineTools``): search and book flights, change or cancel
reservations, baggage, passengers, certificates. Failures raise ``ValueError`` with tau2's
messages. Seats are not released on cancellation, as in tau2."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from agentkit.envs.domains.tau2.common import calculate as tau2_calculate
from agentkit.envs.tau2.toolkit import Toolkit, tool

from .models import (
    AirportCode,
    Certificate,
    DirectFlight,
    Flight,
    FlightDateStatus,
    FlightDateStatusAvailable,
    FlightDB,
    FlightInfo,
    Passenger,
    Payment,
    Reservation,
    ReservationFlight,
    User,
)

AIRPORTS = (
    ("SFO", "San Francisco"),
    ("JFK", "New York"),
    ("LAX", "Los Angeles"),
    ("ORD", "Chicago"),
    ("DFW", "Dallas"),
    ("DEN", "Denver"),
    ("SEA", "Seattle"),
    ("ATL", "Atlanta"),
    ("MIA", "Miami"),
    ("BOS", "Boston"),
    ("PHX", "Phoenix"),
    ("IAH", "Houston"),
    ("LAS", "Las Vegas"),
    ("MCO", "Orlando"),
    ("EWR", "Newark"),
    ("CLT", "Charlotte"),
    ("MSP", "Minneapolis"),
    ("DTW", "Detroit"),
    ("PHL", "Philadelphia"),
    ("LGA", "LaGuardia"),
)
NEW_RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
NEW_CERTIFICATE_IDS = (3221322, 3221323, 3221324)
NOW = "2024-05-15T15:00:00"


def _models(items: list[Any], model: type[Any]) -> list[Any]:
    """tau2 converts a list only when every element is a dict."""
    if all(isinstance(item, dict) for item in items):
        return [model(**item) for item in items]
    return items


class AirlineTools(Toolkit):
    db: FlightDB

    def _get_user(self, user_id: str) -> User:
        if user_id not in self.db.users:
            raise ValueError(f"User {user_id} not found")
        return self.db.users[user_id]

    def _get_reservation(self, reservation_id: str) -> Reservation:
        if reservation_id not in self.db.reservations:
            raise ValueError(f"Reservation {reservation_id} not found")
        return self.db.reservations[reservation_id]

    def _get_flight(self, flight_number: str) -> Flight:
        if flight_number not in self.db.flights:
            raise ValueError(f"Flight {flight_number} not found")
        return self.db.flights[flight_number]

    def _get_flight_instance(self, flight_number: str, date: str) -> FlightDateStatus:
        flight = self._get_flight(flight_number)
        if date not in flight.dates:
            raise ValueError(f"Flight {flight_number} not found on date {date}")
        return flight.dates[date]

    def _available(self, flight_number: str, date: str) -> FlightDateStatusAvailable:
        data = self._get_flight_instance(flight_number=flight_number, date=date)
        if not isinstance(data, FlightDateStatusAvailable):
            raise ValueError(f"Flight {flight_number} not available on date {date}")
        return data

    def _search_direct_flight(
        self,
        date: str,
        origin: str | None = None,
        destination: str | None = None,
        leave_after: str | None = None,
    ) -> list[DirectFlight]:
        results = []
        for flight in self.db.flights.values():
            day = flight.dates.get(date)
            if (
                (origin is None or flight.origin == origin)
                and (destination is None or flight.destination == destination)
                and isinstance(day, FlightDateStatusAvailable)
                and (leave_after is None or flight.scheduled_departure_time_est >= leave_after)
            ):
                results.append(
                    DirectFlight(
                        flight_number=flight.flight_number,
                        origin=flight.origin,
                        destination=flight.destination,
                        status="available",
                        scheduled_departure_time_est=flight.scheduled_departure_time_est,
                        scheduled_arrival_time_est=flight.scheduled_arrival_time_est,
                        available_seats=day.available_seats,
                        prices=day.prices,
                    )
                )
        return results

    def _payment_for_update(self, user: User, payment_id: str, total_price: int) -> Payment | None:
        if payment_id not in user.payment_methods:
            raise ValueError("Payment method not found")
        method = user.payment_methods[payment_id]
        if method.source == "certificate":
            raise ValueError("Certificate cannot be used to update reservation")
        if method.source == "gift_card" and method.amount < total_price:
            raise ValueError("Gift card balance is not enough")
        if method.source == "gift_card":
            method.amount -= total_price
        return Payment(payment_id=payment_id, amount=total_price) if total_price != 0 else None

    @tool()
    def calculate(self, expression: str) -> str:
        return tau2_calculate(expression)

    @tool()
    def get_reservation_details(self, reservation_id: str) -> Reservation:
        return self._get_reservation(reservation_id)

    @tool()
    def get_user_details(self, user_id: str) -> User:
        return self._get_user(user_id)

    @tool()
    def list_all_airports(self) -> list[AirportCode]:
        return [AirportCode(iata=iata, city=city) for iata, city in AIRPORTS]

    @tool()
    def search_direct_flight(self, origin: str, destination: str, date: str) -> list[DirectFlight]:
        return self._search_direct_flight(date=date, origin=origin, destination=destination)

    @tool()
    def search_onestop_flight(
        self, origin: str, destination: str, date: str
    ) -> list[list[DirectFlight]]:
        results = []
        for first in self._search_direct_flight(date=date, origin=origin):
            first.date = date
            next_day = "+1" in first.scheduled_arrival_time_est
            date2 = f"2024-05-{int(date[-2:]) + 1}" if next_day else date
            for second in self._search_direct_flight(
                date=date2,
                origin=first.destination,
                destination=destination,
                leave_after=first.scheduled_arrival_time_est,
            ):
                second.date = date2
                results.append([first, second])
        return results

    @tool()
    def get_flight_status(self, flight_number: str, date: str) -> str:
        return self._get_flight_instance(flight_number, date).status

    @tool()
    def transfer_to_human_agents(self, summary: str) -> str:
        return "Transfer successful"

    def _charge(self, user: User, payments: list[Payment], total_price: int) -> None:
        """Check the booking's payments (known methods, balances, the sum) and take them:
        gift cards are debited, certificates used up."""
        for payment in payments:
            if payment.payment_id not in user.payment_methods:
                raise ValueError(f"Payment method {payment.payment_id} not found")
            method = user.payment_methods[payment.payment_id]
            if method.source in {"gift_card", "certificate"} and method.amount < payment.amount:
                raise ValueError(f"Not enough balance in payment method {payment.payment_id}")
        total_payment = sum(payment.amount for payment in payments)
        if total_payment != total_price:
            raise ValueError(
                f"Payment amount does not add up, total price is {total_price}, "
                f"but paid {total_payment}"
            )
        for payment in payments:
            method = user.payment_methods[payment.payment_id]
            if method.source == "gift_card":
                method.amount -= payment.amount
            elif method.source == "certificate":
                user.payment_methods.pop(payment.payment_id)

    @tool(mutates=True)
    def book_reservation(
        self,
        user_id: str,
        origin: str,
        destination: str,
        flight_type: str,
        cabin: str,
        flights: list[Any],
        passengers: list[Any],
        payment_methods: list[Any],
        total_baggages: int,
        nonfree_baggages: int,
        insurance: str,
    ) -> Reservation:
        flights = _models(flights, FlightInfo)
        passengers = _models(passengers, Passenger)
        payment_methods = _models(payment_methods, Payment)
        user = self._get_user(user_id)
        reservation_id = next(
            (rid for rid in NEW_RESERVATION_IDS if rid not in self.db.reservations), None
        )
        if reservation_id is None:
            raise ValueError("Too many reservations")
        reservation = Reservation(
            reservation_id=reservation_id,
            user_id=user_id,
            origin=origin,
            destination=destination,
            flight_type=flight_type,
            cabin=cabin,
            flights=[],
            passengers=deepcopy(passengers),
            payment_history=deepcopy(payment_methods),
            created_at=NOW,
            total_baggages=total_baggages,
            nonfree_baggages=nonfree_baggages,
            insurance=insurance,
        )
        total_price = 0
        booked: list[FlightDateStatusAvailable] = []
        for info in flights:
            flight = self._get_flight(info.flight_number)
            day = self._available(info.flight_number, info.date)
            if day.available_seats[cabin] < len(passengers):  # type: ignore[index]
                raise ValueError(f"Not enough seats on flight {info.flight_number}")
            price = day.prices[cabin]  # type: ignore[index]
            reservation.flights.append(
                ReservationFlight(
                    origin=flight.origin,
                    destination=flight.destination,
                    flight_number=info.flight_number,
                    date=info.date,
                    price=price,
                )
            )
            booked.append(day)
            total_price += price * len(passengers)
        if insurance == "yes":
            total_price += 30 * len(passengers)
        total_price += 50 * nonfree_baggages
        self._charge(user, payment_methods, total_price)
        for day in booked:
            day.available_seats[cabin] -= len(passengers)  # type: ignore[index]
        self.db.reservations[reservation_id] = reservation
        self.db.users[user_id].reservations.append(reservation_id)
        return reservation

    @tool(mutates=True)
    def cancel_reservation(self, reservation_id: str) -> Reservation:
        reservation = self._get_reservation(reservation_id)
        refunds = [
            Payment(payment_id=p.payment_id, amount=-p.amount) for p in reservation.payment_history
        ]
        reservation.payment_history.extend(refunds)
        reservation.status = "cancelled"
        return reservation

    @tool(mutates=True)
    def send_certificate(self, user_id: str, amount: int) -> str:
        user = self._get_user(user_id)
        for payment_id in (f"certificate_{n}" for n in NEW_CERTIFICATE_IDS):
            if payment_id not in user.payment_methods:
                user.payment_methods[payment_id] = Certificate(
                    id=payment_id, amount=amount, source="certificate"
                )
                return f"Certificate {payment_id} added to user {user_id} with amount {amount}."
        raise ValueError("Too many certificates")

    @tool(mutates=True)
    def update_reservation_baggages(
        self, reservation_id: str, total_baggages: int, nonfree_baggages: int, payment_id: str
    ) -> Reservation:
        reservation = self._get_reservation(reservation_id)
        user = self._get_user(reservation.user_id)
        total_price = 50 * max(0, nonfree_baggages - reservation.nonfree_baggages)
        payment = self._payment_for_update(user, payment_id, total_price)
        if payment is not None:
            reservation.payment_history.append(payment)
        reservation.total_baggages = total_baggages
        reservation.nonfree_baggages = nonfree_baggages
        return reservation

    @tool(mutates=True)
    def update_reservation_flights(
        self, reservation_id: str, cabin: str, flights: list[Any], payment_id: str
    ) -> Reservation:
        flights = _models(flights, FlightInfo)
        reservation = self._get_reservation(reservation_id)
        user = self._get_user(reservation.user_id)
        count = len(reservation.passengers)
        total_price = 0
        chosen: list[ReservationFlight] = []
        for info in flights:
            kept = next(
                (
                    f
                    for f in reservation.flights
                    if f.flight_number == info.flight_number
                    and f.date == info.date
                    and cabin == reservation.cabin
                ),
                None,
            )
            if kept:
                total_price += kept.price * count
                chosen.append(kept)
                continue
            flight = self._get_flight(info.flight_number)
            day = self._available(info.flight_number, info.date)
            if day.available_seats[cabin] < count:  # type: ignore[index]
                raise ValueError(f"Not enough seats on flight {info.flight_number}")
            new = ReservationFlight(
                flight_number=info.flight_number,
                date=info.date,
                price=day.prices[cabin],  # type: ignore[index]
                origin=flight.origin,
                destination=flight.destination,
            )
            total_price += new.price * count
            chosen.append(new)
        total_price -= sum(f.price for f in reservation.flights) * count
        payment = self._payment_for_update(user, payment_id, total_price)
        if payment is not None:
            reservation.payment_history.append(payment)
        reservation.flights = chosen
        reservation.cabin = cabin  # type: ignore[assignment]
        return reservation

    @tool(mutates=True)
    def update_reservation_passengers(
        self, reservation_id: str, passengers: list[Any]
    ) -> Reservation:
        passengers = _models(passengers, Passenger)
        reservation = self._get_reservation(reservation_id)
        if len(passengers) != len(reservation.passengers):
            raise ValueError("Number of passengers does not match")
        reservation.passengers = deepcopy(passengers)
        return reservation
