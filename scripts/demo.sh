#!/usr/bin/env bash
# Installs agentkit (versions pinned in constraints.txt) and runs the main job: an agent on the
# embedded default model that answers with a real tool call, its answer checked against the
# tool's result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh embedded
exec python3 -m agentkit.cli run "${@:-What is (17 + 25) * 3?}"
