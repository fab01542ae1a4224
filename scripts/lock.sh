#!/usr/bin/env bash
# Regenerates constraints.txt from this environment: the exact versions of agentkit's
# dependency closure with all its extras (see scripts/lock_constraints.py). Run it where
# `bash scripts/test.sh` passes, after upgrading on purpose (scripts/constraints_drift.py
# lists what moved upstream), then commit constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/lock_constraints.py "$@"
