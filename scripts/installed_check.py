"""Checks an installed agentkit from the outside: run it with the fresh virtualenv's python.

``scripts/clean_install_check.sh`` installs the package with no extras into a new virtualenv and
runs this file there (``python -I``, so the source tree is not on the path). It checks that

- ``agentkit`` is imported from the virtualenv, not from a source tree;
- every public module imports, or raises an ImportError that names a declared extra
  (``pip install 'agentkit[embedded]'``); anything else is a broken install;
- ``agentkit --version`` prints the installed version;
- the scripted agent answers the README's question: ``agentkit run --backend scripted``
  against the built-in SGLang test server exits 0 with the right number.

Exit status 0 when all hold; the report goes to stdout.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import pkgutil
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

QUESTION = "What is (17 + 25) * 3?"
ANSWER = "126"
_EXTRA = re.compile(r"agentkit(?:-sandboxes|-tools)?\[[A-Za-z0-9_.-]+\]")
# The workspace's import packages and the distribution each comes from.
PACKAGES = {
    "agentkit": "agentkit",
    "agentkit_sandboxes": "agentkit-sandboxes",
    "agentkit_tools": "agentkit-tools",
}


@dataclass
class WalkReport:
    imported: list[str] = field(default_factory=list)
    needs_extra: dict[str, str] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)


_HOST = re.compile(r"runs inside (\w+)")


def named_extra(exc: BaseException, extras: set[str]) -> str | None:
    """The declared extra (``dist[extra]``) an ImportError tells the user to install, or None
    if it names none of ``extras``."""
    if not isinstance(exc, ImportError):
        return None
    for found in _EXTRA.findall(str(exc)):
        if found in extras:
            return str(found)
    return None


def host_framework(name: str, exc: BaseException) -> str | None:
    """A trainer plug-in (``agentkit.integrations.*``) runs inside its host framework (verl,
    slime), which is not an extra of agentkit: its ImportError must say so ("runs inside X")."""
    if not name.startswith("agentkit.integrations.") or not isinstance(exc, ImportError):
        return None
    found = _HOST.search(str(exc))
    return f"host {found.group(1)}" if found else None


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def walk_modules(root: str, extras: set[str]) -> WalkReport:
    """Import ``root`` and every public module below it (``__main__`` modules are skipped)."""
    report = WalkReport()
    pending = [root]
    while pending:
        name = pending.pop(0)
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # every failure is reported, none hidden
            extra = named_extra(exc, extras) or host_framework(name, exc)
            if extra is not None:
                report.needs_extra[name] = extra
            else:
                report.broken[name] = f"{type(exc).__name__}: {exc}"
            continue
        report.imported.append(name)
        path = getattr(module, "__path__", None)
        if path is None:
            continue
        found = sorted(f"{name}.{info.name}" for info in pkgutil.iter_modules(path))
        pending.extend(sorted(n for n in found if _public(n)))
    report.imported.sort()
    return report


def _declared_extras() -> set[str]:
    """Every ``dist[extra]`` the installed workspace declares."""
    return {
        f"{dist}[{extra}]"
        for dist in PACKAGES.values()
        for extra in md.metadata(dist).get_all("Provides-Extra") or []
    }


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTKIT_")}
    script = Path(sys.executable).parent / "agentkit"
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def check_location() -> list[str]:
    import agentkit

    where = Path(agentkit.__file__).resolve()
    if not where.is_relative_to(Path(sys.prefix).resolve()):
        return [f"agentkit was imported from {where}, not from the virtualenv {sys.prefix}"]
    return []


def check_version() -> list[str]:
    result = _cli(["--version"])
    expected = f"agentkit {md.version('agentkit')}"
    if result.returncode != 0 or result.stdout.strip() != expected:
        return [f"agentkit --version: exit {result.returncode}, {result.stdout!r} {result.stderr}"]
    return []


def check_plugins() -> list[str]:
    """The sandboxes' and tools' CLI groups reach ``agentkit`` through entry points."""
    problems = []
    for group in ("sandbox", "index"):
        result = _cli([group, "--help"])
        if result.returncode != 0 or "Usage" not in result.stdout:
            problems.append(f"agentkit {group} --help: exit {result.returncode} {result.stderr}")
    return problems


def check_scripted_agent() -> list[str]:
    result = _cli(["run", "--backend", "scripted", "--hide-reasoning", QUESTION])
    print(f"agentkit run --backend scripted {QUESTION!r}: exit {result.returncode}")
    print("  stdout: " + result.stdout.strip().replace("\n", "\n          "))
    problems = []
    if result.returncode != 0:
        problems.append(f"scripted agent exited {result.returncode}:\n{result.stderr}")
    if ANSWER not in result.stdout:
        problems.append(f"scripted agent's answer lacks {ANSWER}: {result.stdout!r}")
    if "[completed]" not in result.stderr:
        problems.append(f"scripted agent did not complete:\n{result.stderr}")
    return problems


def main() -> int:
    problems = check_location()
    if problems:
        print("\n".join(problems))
        return 1
    extras = _declared_extras()
    for package in PACKAGES:
        report = walk_modules(package, extras)
        print(f"{package}: imported {len(report.imported)} modules with no extras installed")
        for name, extra in sorted(report.needs_extra.items()):
            print(f"  {name}: needs {extra} and says so")
        problems += [f"{name} does not import: {error}" for name, error in report.broken.items()]
        if len(report.imported) < 5:
            problems.append(f"only {len(report.imported)} modules imported: {report.imported}")
    problems += check_version()
    problems += check_plugins()
    problems += check_scripted_agent()
    for problem in problems:
        print(f"FAIL {problem}")
    print("clean install: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
