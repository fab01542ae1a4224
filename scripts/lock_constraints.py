"""Writes ``constraints.txt``: the exact versions, from this environment, of everything that
agentkit with all its extras installs (its dependency closure; nothing else that happens to be
installed, so no torch). Run by ``scripts/lock.sh`` in an environment where the tests pass.

    python3 scripts/lock_constraints.py [--out constraints.txt]

Build tools (pip, setuptools, wheel) are left out: pip builds agentkit in an isolated
environment that ``pyproject.toml``'s ``[build-system]`` describes.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import sys
import tomllib
from pathlib import Path

from constraints_drift import NO_DEPS, ROOT, normalize
from packaging.markers import default_environment
from packaging.requirements import Requirement

BUILD_TOOLS = {"pip", "setuptools", "wheel"}


def _applies(req: Requirement, extra: str) -> bool:
    if req.marker is None:
        return True
    environment: dict[str, str] = {**default_environment(), "extra": extra}
    return bool(req.marker.evaluate(environment))


def _requirements(requires: list[str], extras: set[str]) -> list[Requirement]:
    """The requirements that apply on this machine for a package installed with ``extras``."""
    out = []
    for line in requires:
        req = Requirement(line)
        if any(_applies(req, extra) for extra in extras | {""}):
            out.append(req)
    return out


def closure(roots: list[Requirement]) -> dict[str, str]:
    """name -> installed version for ``roots`` and everything they pull in, recursively."""
    found: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(req.name, frozenset(req.extras)) for req in roots]
    while pending:
        name, extras = pending.pop()
        key = (normalize(name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError as exc:
            raise SystemExit(
                f"{name} is required but not installed here: install it first"
            ) from exc
        found[normalize(name)] = dist.version
        for req in _requirements(dist.requires or [], set(extras)):
            pending.append((req.name, frozenset(req.extras)))
    return found


# The workspace's distributions (docs/architecture.md): installed from this checkout, never pinned.
WORKSPACE = {
    "agentkit": ROOT,
    "agentkit-sandboxes": ROOT / "sandboxes",
    "agentkit-tools": ROOT / "tools",
}


def project_roots(pyproject: Path) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = list(project["dependencies"])
    for reqs in project.get("optional-dependencies", {}).values():
        lines += reqs
    roots = [Requirement(line) for line in lines]
    return [r for r in roots if _applies(r, "") and normalize(r.name) not in WORKSPACE]


def workspace_roots() -> list[Requirement]:
    """Every requirement of every workspace member, with all their extras."""
    return [r for folder in WORKSPACE.values() for r in project_roots(folder / "pyproject.toml")]


def render(pins: dict[str, str]) -> str:
    header = [
        "# Exact versions for agentkit and all its extras, from an environment where the tests",
        "# passed. Used by scripts/install.sh (pip install -c constraints.txt); regenerate with",
        "# scripts/lock.sh. scripts/constraints_drift.py reports what moved upstream since.",
    ]
    lines = [f"{name}=={version}" for name, version in sorted(pins.items())]
    return "\n".join(header + lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "constraints.txt")
    args = parser.parse_args(argv)
    pins = closure(workspace_roots())
    for name in NO_DEPS:
        pins[normalize(name)] = md.version(name)
    for name in BUILD_TOOLS | set(WORKSPACE):
        pins.pop(name, None)
    args.out.write_text(render(pins))
    print(f"wrote {len(pins)} pins to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
