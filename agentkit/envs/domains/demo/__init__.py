"""A small bookshop domain whose data this project generates, so examples run anywhere."""

from __future__ import annotations

from agentkit.envs.domain import Domain, LoadedData
from agentkit.envs.tasks import Task

from .data import generate, tasks
from .tools import DEMO_TOOLS

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


def load() -> Domain:
    data = generate()
    return Domain(
        name="demo",
        policy=POLICY,
        toolset=DEMO_TOOLS,
        data=LoadedData.from_objects(data),
        tasks=[Task.model_validate(task) for task in tasks(data)],
    )


__all__ = ["DEMO_TOOLS", "POLICY", "generate", "load"]
