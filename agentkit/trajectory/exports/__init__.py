"""Exports of recorded episodes: slime ``Sample`` dicts, verl agent-loop rows, an
OpenAI-messages view for SFT, and a Parquet dataset Hugging Face ``datasets`` loads.

One module per concept: :mod:`.selection` picks the episodes (and says why the rest is left
out), :mod:`.slime`, :mod:`.verl`, :mod:`.sft` and :mod:`.hf` shape them for one trainer
each, :mod:`.writer` writes a file. Infrastructure failures (and cancelled runs) are left out
of the training exports and counted in the :class:`ExportReport` - never scored 0. Policy
failures stay in, with reward 0.0 when the reward function gave none.
"""

from agentkit.trajectory.exports.hf import hf_table
from agentkit.trajectory.exports.selection import (
    CutEpisodes,
    EpisodeRows,
    Exclusion,
    ExportReport,
    episode_reward,
    exclusion_reason,
    trainable_episodes,
)
from agentkit.trajectory.exports.sft import sft_messages, sft_records
from agentkit.trajectory.exports.slime import Decoder, slime_samples
from agentkit.trajectory.exports.verl import verl_rows
from agentkit.trajectory.exports.writer import ExportFormat, export, write_jsonl

__all__ = [
    "CutEpisodes",
    "Decoder",
    "EpisodeRows",
    "Exclusion",
    "ExportFormat",
    "ExportReport",
    "episode_reward",
    "exclusion_reason",
    "export",
    "hf_table",
    "sft_messages",
    "sft_records",
    "slime_samples",
    "trainable_episodes",
    "verl_rows",
    "write_jsonl",
]
