"""What both command paths share: the in-container runner (``runner_inside.py``) and the
direct ``docker exec`` path (``direct_exec.py``). A bounded capture of an output stream
(:class:`Capture`) and the reading of the cgroup's OOM-kill and pid-limit counters
(:func:`tally_counters`).

Stdlib only and Python 3.8 compatible (annotations in quotes): the host sends this module's
source into the container ahead of the runner's (``runner.RUNNER_SOURCE``).
"""

from collections.abc import Iterable, Mapping

# (file, key, counter): the cgroup v1 and v2 files that count OOM kills and pid-limit refusals
COUNTER_FILES = (
    ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill", "oom"),
    ("/sys/fs/cgroup/memory.events", "oom_kill", "oom"),
    ("/sys/fs/cgroup/pids/pids.events", "max", "pids"),
    ("/sys/fs/cgroup/pids.events", "max", "pids"),
)


def tally_counters(files: "Mapping[str, Iterable[str]]") -> "dict[str, int]":
    """``{"oom": n, "pids": n}`` from the lines (``"<key> <value>"``) of the counter files that
    could be read, by path; files left out count 0."""
    totals = {"oom": 0, "pids": 0}
    for path, key, name in COUNTER_FILES:
        for line in files.get(path, ()):
            parts = line.split()
            if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
                totals[name] += int(parts[1])
    return totals


class Capture:
    """Keeps the head and the tail of a byte stream within ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit * 2 // 3
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * self.tail_limit + 65536:
                del self.tail[: len(self.tail) - self.tail_limit]

    @property
    def truncated(self) -> bool:
        return self.total > self.head_limit + self.tail_limit

    def text(self) -> str:
        tail = bytes(self.tail[-self.tail_limit :]) if self.tail_limit else b""
        if not self.truncated:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace")
        cut = self.total - len(self.head) - len(tail)
        return (
            bytes(self.head).decode("utf-8", "replace")
            + f"\n...[{cut} bytes truncated]...\n"
            + tail.decode("utf-8", "replace")
        )
