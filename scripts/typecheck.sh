#!/usr/bin/env bash
# Type-checks the whole package as it installs: tools/ and sandboxes/ mapped to
# agentkit.tools and agentkit.sandboxes (mypy has no package-dir mapping, so a
# throwaway tree of symlinks gives it the installed shape), then ruff on everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/agentkit"
for entry in "$root"/agentkit/*; do ln -s "$entry" "$tree/agentkit/$(basename "$entry")"; done
ln -s "$root/tools" "$tree/agentkit/tools"
ln -s "$root/sandboxes" "$tree/agentkit/sandboxes"
cp pyproject.toml "$tree/"
(cd "$tree" && python3 -m mypy --config-file pyproject.toml -p agentkit)
ruff check .
ruff format --check .
