#!/usr/bin/env bash
# Runs the trainer plug-in tests against verl's and slime's own code in a side virtualenv.
# verl 0.9.1 needs transformers 5.9, which needs tokenizers < 0.23; agentkit's pinned
# environment has tokenizers 0.23, so verl cannot import there. The side venv sees the main
# environment's packages (--system-site-packages) and overrides only what verl needs, with torch
# from this machine's CPU build (never a CUDA one). slime is not on PyPI: its tests read its
# source from SLIME_SRC or the fetched mirror and skip, saying why, when neither is there.
#   bash scripts/trainers_check.sh [pytest args]      AGENTKIT_SKIP_TRAINERS=1 skips it
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${AGENTKIT_TRAINERS_VENV:-/tmp/agentkit-trainers-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
pip_install() { "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
pip_install torch==2.13.0
pip_install --no-deps verl==0.9.1
pip_install transformers==5.9.0 tokenizers==0.22.2 tensordict==0.10.0 hydra-core==1.3.8 \
  omegaconf==2.3.1 pandas==3.1.1 datasets==5.2.0 codetiming==1.4.0 pillow==13.0.0 \
  pylatexenc==2.11 cachetools==8.0.2 wandb==0.31.0
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -rs \
  tests/integrations/test_verl_agent_loop.py tests/integrations/test_verl_sft.py tests/integrations/test_slime_generate.py "$@"
