#!/usr/bin/env bash
# The clean-install check: what a new user gets from `pip install .` with NO extras, in a fresh
# virtualenv (pinned by constraints.txt, not editable; the workspace's three distributions:
# `pip install . ./sandboxes ./tools`): every public module imports or names
# the extra it needs, `agentkit --version` works, and the scripted agent answers the README's
# question (scripts/installed_check.py). Then a drift report: what an unpinned install would
# resolve to today against constraints.txt (scripts/constraints_drift.py; never fails).
# Run by scripts/test.sh (skip with AGENTKIT_SKIP_CLEAN_INSTALL=1); about a minute of CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/agentkit-clean-install.XXXXXX")
drift_pid=""
cleanup() {
  if [ -n "$drift_pid" ]; then kill "$drift_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The drift report resolves in the background meanwhile (pip metadata only, no install).
python3 scripts/constraints_drift.py >"$work/drift.txt" 2>&1 &
drift_pid=$!

# Build from a copy of the working tree: an in-tree build writes build/ and *.egg-info here.
mkdir "$work/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard \
    | tar -c --null --ignore-failed-read -T - -f - 2>/dev/null | tar -x -C "$work/src"
else
  tar -c --exclude=./build --exclude='*.egg-info' --exclude=./.git -f - . | tar -x -C "$work/src"
fi

echo "fresh virtualenv: pip install -c constraints.txt . ./sandboxes ./tools (no extras)" >&2
python3 -m venv --without-pip "$work/venv"  # this pip installs into it (pip --python)
py="$work/venv/bin/python"
if ! python3 -m pip --python "$py" install -q --disable-pip-version-check -c constraints.txt \
  "$work/src" "$work/src/sandboxes" "$work/src/tools" 2>"$work/pip.log"; then
  grep -v "^WARNING: Location 'file:" "$work/pip.log" >&2
  echo "clean install: FAILED (pip install .)" >&2
  exit 1
fi

echo "installed in ${SECONDS}s; checking it from outside the source tree" >&2
status=0
(cd "$work" && "$py" -I "$root/scripts/installed_check.py") || status=$?

wait "$drift_pid" || true
echo "drift report (unpinned resolution vs constraints.txt; informational, never fails):" >&2
cat "$work/drift.txt"
echo "clean-install check took ${SECONDS}s" >&2
exit $status
