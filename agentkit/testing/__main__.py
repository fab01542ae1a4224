"""``python -m agentkit.testing serve --policy pkg.module:callable``."""

from __future__ import annotations

from .cli import app

if __name__ == "__main__":
    app(prog_name="python -m agentkit.testing")
