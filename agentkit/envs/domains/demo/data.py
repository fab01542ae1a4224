"""The demo bookshop's database and tasks, generated deterministically (no files needed)."""

from __future__ import annotations

import random
from typing import Any

FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Iris",
    "Jon",
    "Kemi",
    "Liam",
]
LAST = [
    "Moreau",
    "Okafor",
    "Park",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Underwood",
    "Varga",
    "Weber",
]
CITIES = [
    ("Lyon", "FR", "69001"),
    ("Porto", "PT", "4000"),
    ("Austin", "US", "73301"),
    ("Osaka", "JP", "530"),
]
STREETS = ["Rue Neuve", "Main St", "Harbour Rd", "Elm Ave", "Kings Way", "Mill Lane"]
TITLES = [
    ("The Quiet Harbour", "M. Lind"),
    ("Rust and Ruin", "T. Okoye"),
    ("A Field Guide to Moths", "R. Hale"),
    ("Learning Async Python", "S. Ibarra"),
    ("The Long Table", "C. Duval"),
    ("Night Trains of Europe", "K. Novak"),
    ("Baking by Weight", "P. Amari"),
    ("Small Gods of the Sea", "L. Brand"),
    ("Counting Stars", "J. Wu"),
    ("Ferns at Dusk", "A. Rowe"),
]
STATUSES = ["pending", "pending", "shipped", "delivered", "cancelled"]
SEED = 20240515


def generate(seed: int = SEED, customers: int = 12, orders: int = 30) -> dict[str, Any]:
    rng = random.Random(seed)
    books: dict[str, dict[str, Any]] = {}
    for index, (title, author) in enumerate(TITLES):
        book_id = f"B{100 + index}"
        price = round(rng.uniform(8, 45), 2)
        books[book_id] = {
            "book_id": book_id,
            "title": title,
            "author": author,
            "price": price,
            "in_stock": rng.random() > 0.2,
        }
    people: dict[str, dict[str, Any]] = {}
    for index in range(customers):
        first, last = FIRST[index % len(FIRST)], LAST[(index * 7) % len(LAST)]
        customer_id = f"{first.lower()}_{last.lower()}_{1000 + index}"
        city, country, zip_code = CITIES[index % len(CITIES)]
        people[customer_id] = {
            "customer_id": customer_id,
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}@example.com",
            "address": {
                "street": f"{rng.randint(1, 200)} {rng.choice(STREETS)}",
                "city": city,
                "country": country,
                "zip": zip_code,
            },
            "store_credit": round(rng.uniform(0, 60), 2),
            "orders": [],
        }
    ids = list(people)
    all_orders: dict[str, dict[str, Any]] = {}
    for index in range(orders):
        order_id = f"#D{5000 + index}"
        customer_id = ids[index % len(ids)]
        picked = rng.sample(sorted(books), rng.randint(1, 3))
        items = [
            {"book_id": b, "title": books[b]["title"], "price": books[b]["price"]} for b in picked
        ]
        all_orders[order_id] = {
            "order_id": order_id,
            "customer_id": customer_id,
            "status": STATUSES[index % len(STATUSES)],
            "items": items,
            "total": round(sum(item["price"] for item in items), 2),
            "paid_with": "store_credit" if index % 3 == 0 else "card",
            "address": dict(people[customer_id]["address"]),
        }
        people[customer_id]["orders"].append(order_id)
    return {"books": books, "customers": people, "orders": all_orders}


def tasks(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Tasks with gold actions derived from the generated data."""
    orders = list(data["orders"].values())
    customers = data["customers"]
    pending = [o for o in orders if o["status"] == "pending"]
    shipped = [o for o in orders if o["status"] == "shipped"]
    out: list[dict[str, Any]] = []
    for order in pending[:3]:
        person = customers[order["customer_id"]]
        out.append(
            {
                "user_id": person["customer_id"],
                "instruction": (
                    f"You are {person['name']} ({person['email']}). You want to cancel your order "
                    f"{order['order_id']} because you no longer need it. You are polite but brief."
                ),
                "actions": [
                    {"name": "find_customer_by_email", "kwargs": {"email": person["email"]}},
                    {"name": "get_order_details", "kwargs": {"order_id": order["order_id"]}},
                    {
                        "name": "cancel_order",
                        "kwargs": {"order_id": order["order_id"], "reason": "no longer needed"},
                    },
                ],
                "outputs": [],
            }
        )
    for order in pending[3:5]:
        person = customers[order["customer_id"]]
        new_address = {"street": "12 Quay Street", "city": "Dublin", "country": "IE", "zip": "D02"}
        out.append(
            {
                "user_id": person["customer_id"],
                "instruction": (
                    f"You are {person['name']} ({person['email']}). You moved: order "
                    f"{order['order_id']} should go to 12 Quay Street, Dublin, IE, zip D02."
                ),
                "actions": [
                    {"name": "find_customer_by_email", "kwargs": {"email": person["email"]}},
                    {
                        "name": "change_order_address",
                        "kwargs": {"order_id": order["order_id"], **new_address},
                    },
                ],
                "outputs": [],
            }
        )
    for order in shipped[:2]:
        person = customers[order["customer_id"]]
        out.append(
            {
                "user_id": person["customer_id"],
                "instruction": (
                    f"You are {person['name']} ({person['email']}). You want to know the total "
                    f"of order {order['order_id']} and whether it can still be cancelled."
                ),
                "actions": [
                    {"name": "find_customer_by_email", "kwargs": {"email": person["email"]}},
                    {"name": "get_order_details", "kwargs": {"order_id": order["order_id"]}},
                ],
                "outputs": [str(order["total"])],
            }
        )
    return out
