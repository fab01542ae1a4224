#!/usr/bin/env bash
# Type-checks the checkout as it stands: mypy strict over the workspace's three import packages
# (agentkit/, tools/agentkit_tools/, sandboxes/agentkit_sandboxes/; pyproject.toml's [tool.mypy]
# names them and puts tools/ and sandboxes/ on mypy's path), then ruff lint and format.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m mypy
ruff check .
ruff format --check .
