"""tau2-bench support: dual-control domains (telecom), tau2's evaluation, and its replay.

Domains come from :func:`agentkit.envs.registry.load_tau2_domain` (``telecom``, ``retail``,
``airline``); :func:`run_tau2_episode` plays one task with an agent and a simulated user
(:class:`Tau2ModelUser` or :class:`GoldScriptedUser`); :func:`evaluate` scores an episode as
tau2 does; :func:`replay_task` replays actions without any model.
"""

from .domain import LoggedCall, Tau2Domain, Tau2Episode, Tau2Tool
from .environment import Observation, Tau2Environment
from .episode import Tau2Ending, Tau2EpisodeResult, run_tau2_episode
from .evaluation import Tau2Reward, evaluate
from .judge import NLJudge
from .replay import Tau2ReplayResult, load_tau2_actions, replay_task
from .runner import Tau2RunSummary, render_tau2_table, run_tau2_tasks
from .scripted import Tau2GoldPolicy
from .tasks import GoldAction, RewardType, Tau2Task, load_tau2_tasks
from .toolkit import Toolkit, tool
from .users import GoldScriptedUser, Tau2ModelUser, Tau2User

__all__ = [
    "GoldAction",
    "GoldScriptedUser",
    "LoggedCall",
    "NLJudge",
    "Observation",
    "RewardType",
    "Tau2Domain",
    "Tau2Ending",
    "Tau2Environment",
    "Tau2Episode",
    "Tau2EpisodeResult",
    "Tau2GoldPolicy",
    "Tau2ModelUser",
    "Tau2ReplayResult",
    "Tau2Reward",
    "Tau2RunSummary",
    "Tau2Task",
    "Tau2Tool",
    "Tau2User",
    "Toolkit",
    "evaluate",
    "load_tau2_actions",
    "load_tau2_tasks",
    "render_tau2_table",
    "replay_task",
    "run_tau2_episode",
    "run_tau2_tasks",
    "tool",
]
