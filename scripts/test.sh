#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root) and runs the whole test suite:
# apt packages (Docker engine, mmdebstrap, Chromium), the package with its dev extras at the
# versions pinned in constraints.txt (scripts/install.sh), a background dockerd, the offline
# sandbox base image (cached), the type check, the clean-install check (a fresh virtualenv
# with no extras, plus a drift report; scripts/clean_install_check.sh), the trainer plug-ins
# against verl's and slime's own code in a side virtualenv (scripts/trainers_check.sh), then
# pytest. Arguments go to pytest. AGENTKIT_SKIP_CLEAN_INSTALL=1 / AGENTKIT_SKIP_TRAINERS=1 skip
# those checks.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s ==\n' "$*" >&2; }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
  command -v chromium >/dev/null || need+=(chromium)
  if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

log "pip install -c constraints.txt -e .[dev,embedded]"
bash scripts/install.sh dev,embedded

bash scripts/start-dockerd.sh || echo "dockerd unavailable: Docker tests will be skipped" >&2
if docker info >/dev/null 2>&1; then
  log "sandbox base image (cached)"
  python3 -m agentkit.cli sandbox build-image || echo "image build failed" >&2
fi

log "type check (mypy strict) and lint (ruff)"
bash scripts/typecheck.sh

clean=0
if [ "${AGENTKIT_SKIP_CLEAN_INSTALL:-0}" != 1 ]; then
  log "clean install (fresh virtualenv, no extras) and dependency drift"
  bash scripts/clean_install_check.sh || clean=$?
fi

trainers=0
if [ "${AGENTKIT_SKIP_TRAINERS:-0}" != 1 ]; then
  log "trainer plug-ins against verl's and slime's own code (side virtualenv)"
  bash scripts/trainers_check.sh || trainers=$?
fi

log "pytest"
set +e
python3 -m pytest "$@"
code=$?
set -e
if [ $code -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
if [ $clean -ne 0 ]; then
  echo "the clean-install check failed (see above)" >&2
  [ $code -ne 0 ] || code=$clean
fi
if [ $trainers -ne 0 ]; then
  echo "the trainer plug-in check failed (see above)" >&2
  [ $code -ne 0 ] || code=$trainers
fi
exit $code
