"""tau2's telecom domain: a carrier's agent tools and the customer's phone (dual control).

After every tool call :func:`sync` copies the line's state onto the phone (active, roaming
allowed, data allowance exceeded) and turns a bill awaiting payment into a payment request on
the phone (settling the bill once the customer has paid it).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from agentkit.envs.tau2.domain import Tau2Domain, read_schemas
from agentkit.envs.tau2.environment import Tau2Environment
from agentkit.envs.tau2.tasks import load_tau2_tasks

from .agent_tools import TelecomTools
from .models import BillStatus, LineStatus, TelecomDB
from .user_models import PaymentRequest, TelecomUserDB
from .user_tools import TelecomUserTools

TASK_FILES = ("tasks.json", "tasks_replayed_subset.json")


def sync(env: Tau2Environment) -> None:
    agent = env.tools
    user = env.user_tools
    assert isinstance(agent, TelecomTools) and isinstance(user, TelecomUserTools)
    around = user.db.surroundings
    number = around.phone_number
    if number is None:
        return
    line = agent._get_line_by_phone(number)
    around.line_active = line.status == LineStatus.ACTIVE
    around.roaming_allowed = bool(line.roaming_enabled)
    plan = agent._get_plan_by_id(line.plan_id)
    around.mobile_data_usage_exceeded = (
        line.data_used_gb >= plan.data_limit_gb + line.data_refueling_gb
    )
    request = around.payment_request
    if request is not None and request.paid:
        agent._set_bill_to_paid(request.bill_id)
        around.payment_request = None
    if around.payment_request is None:
        customer = agent.get_customer_by_phone(number)
        waiting = [
            bill
            for bill in map(agent._get_bill_by_id, customer.bill_ids)
            if bill.status == BillStatus.AWAITING_PAYMENT
        ]
        if waiting:
            around.payment_request = PaymentRequest(
                bill_id=waiting[0].bill_id, amount_due=waiting[0].total_due
            )


def policy_text(data_dir: Path, workflow: bool = False) -> str:
    main = (data_dir / "main_policy.md").read_text(encoding="utf-8")
    name = "tech_support_workflow.md" if workflow else "tech_support_manual.md"
    support = (data_dir / name).read_text(encoding="utf-8")
    return (
        f"<main_policy>\n{main}\n</main_policy>\n"
        f"<tech_support_policy>\n{support}\n</tech_support_policy>"
    )


def load(data_dir: str | Path) -> Tau2Domain:
    folder = Path(data_dir)
    agent_text = (folder / "db.toml").read_text(encoding="utf-8")
    user_text = (folder / "user_db.toml").read_text(encoding="utf-8")
    agent_data = tomllib.loads(agent_text)
    user_data = tomllib.loads(user_text)

    def make_env() -> Tau2Environment:
        return Tau2Environment(
            TelecomTools(TelecomDB.model_validate(agent_data)),
            TelecomUserTools(TelecomUserDB.model_validate(user_data)),
            sync,
        )

    tasks_file = next((folder / n for n in TASK_FILES if (folder / n).is_file()), None)
    return Tau2Domain(
        name="telecom",
        policy=policy_text(folder),
        make_env=make_env,
        tasks=load_tau2_tasks(tasks_file) if tasks_file else [],
        agent_schemas=read_schemas(folder / "tools_schema.json"),
        user_schemas=read_schemas(folder / "user_tools_schema.json"),
    )
