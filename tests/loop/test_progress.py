"""The rollout progress bar: redrawn in place on a real terminal (a pty), plain lines in a log."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from agentkit.progress import Progress


class Clock:
    """A clock the test moves by hand (no sleeping, no timing assertions)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _read_all(master: int) -> bytes:
    """Everything written to a closed pty: Linux hands it to the master side in pieces (a
    worker flushes the buffer), so one read can miss the end; read until EIO (nothing left)."""
    chunks = []
    try:
        while chunk := os.read(master, 65536):
            chunks.append(chunk)
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
    finally:
        os.close(master)
    return b"".join(chunks)


def test_on_a_terminal_the_bar_is_redrawn_in_place() -> None:
    master, slave = os.openpty()
    clock = Clock()
    with open(slave, "w", encoding="utf-8") as stream:
        bar = Progress(4, stream=stream, clock=clock)
        assert bar.interactive  # detected: the stream is a TTY
        for i in range(4):
            clock.now += 1.0
            bar.advance(failed=i == 1)
        clock.now += 0.01
        bar.draw()  # a redraw inside the interval still draws when asked directly
    shown = _read_all(master).decode()
    assert shown.count("\rrollout [") == 5
    assert "4/4 (100%) failed 1" in shown
    assert "#" * 30 in shown


def test_in_a_log_it_prints_plain_lines_by_percent(tmp_path: Path) -> None:
    log = tmp_path / "progress.log"
    clock = Clock()
    with log.open("w", encoding="utf-8") as stream:
        bar = Progress(100, stream=stream, clock=clock, every_s=3600, every_pct=10)
        assert not bar.interactive
        for _ in range(100):
            clock.now += 0.1
            bar.advance()
    text = log.read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert [line.split()[1] for line in lines] == [f"{10 * k}/100" for k in range(1, 11)]
    assert lines[-1].startswith("rollout 100/100 (100%) failed 0")


def test_in_a_log_it_prints_a_line_every_n_seconds(tmp_path: Path) -> None:
    log = tmp_path / "progress.log"
    clock = Clock()
    with log.open("w", encoding="utf-8") as stream:
        bar = Progress(1000, stream=stream, clock=clock, every_s=10, every_pct=100)
        for _ in range(45):
            clock.now += 1.0
            bar.advance()
    lines = log.read_text().splitlines()
    assert [line.split()[1] for line in lines] == ["10/1000", "20/1000", "30/1000", "40/1000"]
    assert "\r" not in log.read_text()


def test_disabled_writes_nothing(tmp_path: Path) -> None:
    log = tmp_path / "progress.log"
    with log.open("w", encoding="utf-8") as stream:
        bar = Progress(3, stream=stream, enabled=False)
        for _ in range(3):
            bar.advance()
    assert log.read_text() == ""
