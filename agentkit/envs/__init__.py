"""Customer-support environments in the style of tau-bench.

A :class:`Domain` holds a database, a policy, tools and tasks; each episode gets a fresh copy of
the database (:class:`EpisodeState`, the ``deps`` the tools read). The reward compares the final
database with the one the gold actions produce and checks the required outputs; pass^k summarises
repeated trials. :func:`run_episode` plays one task with an agent and a simulated user;
:func:`run_tasks` runs tasks x trials concurrently (``agentkit tau run`` on the command line).
"""

from .domain import Domain, DomainTool, EpisodeState
from .env_tool import EnvTool
from .episode import Ending, EpisodeResult, run_episode
from .hashing import db_hash, to_hashable
from .passk import pass_hat_k, pass_hat_k_task, pass_hat_ks
from .registry import DOMAINS, load_domain
from .replay import ReplayResult, load_actions, replay
from .reward import Reward, compute_reward
from .runner import ProgressBar, RunSummary, render_table, run_tasks
from .tasks import Action, Task
from .user import STOP, ModelUser, ScriptedUser, UserSimulator

__all__ = [
    "DOMAINS",
    "STOP",
    "Action",
    "Domain",
    "DomainTool",
    "Ending",
    "EnvTool",
    "EpisodeResult",
    "EpisodeState",
    "ModelUser",
    "ProgressBar",
    "ReplayResult",
    "Reward",
    "RunSummary",
    "ScriptedUser",
    "Task",
    "UserSimulator",
    "compute_reward",
    "db_hash",
    "load_actions",
    "load_domain",
    "pass_hat_k",
    "pass_hat_k_task",
    "pass_hat_ks",
    "render_table",
    "replay",
    "run_episode",
    "run_tasks",
    "to_hashable",
]
