"""A local web viewer for trajectory stores (``agentkit view STORE``).

:class:`StoreIndex` summarises every episode in one pass and reads one episode's lines on
demand; :class:`ViewerServer` serves the page and its JSON API on 127.0.0.1 (stdlib only).
"""

from __future__ import annotations

from .episode_view import EpisodeView, TimelineEntry, episode_view
from .index import EpisodeFilter, EpisodePage, EpisodeSummary, StoreIndex
from .server import ViewerServer

__all__ = [
    "EpisodeFilter",
    "EpisodePage",
    "EpisodeSummary",
    "EpisodeView",
    "StoreIndex",
    "TimelineEntry",
    "ViewerServer",
    "episode_view",
]
