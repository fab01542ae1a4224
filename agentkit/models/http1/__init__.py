"""The transport's own HTTP/1.1 client: non-streamed JSON POSTs to plain ``http://`` URLs.

This is the hot path of every model call in a run (a local SGLang server, or a router in front
of several). A general client does a lot per request that this one does not need: it builds
request and response objects, keeps a cookie jar, runs a streaming reader and timers per read.
Here one request is one write and one reply is read by an :class:`asyncio.Protocol` into one
buffer, framed by ``Content-Length``, by chunks, or by the server closing the connection.

Scope, and what stays with aiohttp/httpx in :mod:`agentkit.models.transport`: streamed replies
(SSE), ``https``, URLs with credentials or non-ASCII parts, and trio. Redirects are not
followed (a model server does not redirect; a 3xx is an error status). Every way a reply can
break ends as a typed exception the transport classifies (:mod:`agentkit.models.failures`):
bytes that are not HTTP, and more than :data:`MAX_INTERIM` interim 1xx replies before the final
one, are a :class:`~agentkit.models.failures.ProtocolError`, a reply cut short a
:class:`~agentkit.models.failures.ReplyCutOff`, a server silent for longer than the read timeout
a :class:`~agentkit.models.failures.ReadTimeout`, a body longer than the pool's
``max_body_bytes`` (:data:`MAX_BODY` by default) as sent or once decoded (a decompression bomb) a
:class:`~agentkit.models.failures.BodyTooLong`, which is not retried, and a header the caller
gave that cannot be sent a ``ValueError`` before anything is sent.

Connections are pooled per (host, port), newest idle first, under one bound on all open
connections. An idle connection is not reused once the server closed it, or after
:data:`IDLE_S` seconds idle (servers close idle connections after a few seconds, uvicorn after
5 by default, and a request crossing that close fails).
"""

from agentkit.models.http1.connection import (
    MAX_BODY,
    MAX_GZIP_MEMBERS,
    MAX_HEAD,
    MAX_INTERIM,
    Reply,
)
from agentkit.models.http1.pool import IDLE_S, ConnectionTimeout, Pool
from agentkit.models.http1.request import Target, request_head, target_of

__all__ = [
    "IDLE_S",
    "MAX_BODY",
    "MAX_GZIP_MEMBERS",
    "MAX_HEAD",
    "MAX_INTERIM",
    "ConnectionTimeout",
    "Pool",
    "Reply",
    "Target",
    "request_head",
    "target_of",
]
