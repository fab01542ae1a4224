"""Customer-support environments in the style of tau-bench.

A :class:`Domain` holds a database, a policy, tools and tasks; each episode gets a fresh copy of
the database (:class:`EpisodeState`, the ``deps`` the tools read). The reward compares the final
database with the one the gold actions produce and checks the required outputs; pass^k summarises
repeated trials.
"""

from .domain import Domain, DomainTool, EpisodeState, ToolSpec
from .hashing import db_hash, to_hashable
from .passk import pass_hat_k, pass_hat_k_task, pass_hat_ks
from .registry import DOMAINS, load_domain
from .replay import ReplayResult, load_actions, replay
from .reward import Reward, compute_reward
from .tasks import Action, Task

__all__ = [
    "DOMAINS",
    "Action",
    "Domain",
    "DomainTool",
    "EpisodeState",
    "ReplayResult",
    "Reward",
    "Task",
    "ToolSpec",
    "compute_reward",
    "db_hash",
    "load_actions",
    "load_domain",
    "pass_hat_k",
    "pass_hat_k_task",
    "pass_hat_ks",
    "replay",
    "to_hashable",
]
