"""What a plain ``pip install .`` gets: every import the package makes is declared.

A fresh install has only the core ``dependencies``; the dev environment has everything, so an
undeclared import passes the suite and fails a new user (``sniffio`` did). These tests read the
source and the project metadata, so they catch it here; ``scripts/clean_install_check.sh``
checks the same for real in a fresh virtualenv. Also covers the drift report's comparison.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The workspace's distributions: (name, folder holding its pyproject.toml, its import package).
DISTRIBUTIONS = (
    ("agentkit", ROOT, ROOT / "agentkit"),
    ("agentkit-sandboxes", ROOT / "sandboxes", ROOT / "sandboxes" / "agentkit_sandboxes"),
    ("agentkit-tools", ROOT / "tools", ROOT / "tools" / "agentkit_tools"),
)
WORKSPACE_IMPORTS = {"agentkit", "agentkit_tools", "agentkit_sandboxes", "__future__"}
_NAMED_EXTRA = re.compile(r"(agentkit(?:-sandboxes|-tools)?)\[([\w.-]+)\]")

# Imported lazily for an optional fallback, never needed: declared by no extra on purpose.
UNDECLARED_OPTIONAL = {
    "transformers": "agentkit/tokenizer.py falls back to it when installed",
    "torch": "slime's .pt rollout format; slime brings it, and the error says pip install torch",
    "verl": "agentkit.integrations.verl runs inside verl, which brings it (pip install verl)",
}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return _normalize(match.group(0))


def _project(folder: Path = ROOT) -> dict[str, object]:
    data = tomllib.loads((folder / "pyproject.toml").read_text())
    project = data["project"]
    assert isinstance(project, dict)
    return project


def _core(folder: Path = ROOT) -> set[str]:
    return {_requirement_name(r) for r in _project(folder)["dependencies"]}  # type: ignore[attr-defined]


def _extras(folder: Path = ROOT) -> dict[str, set[str]]:
    extras = _project(folder).get("optional-dependencies", {})
    assert isinstance(extras, dict)
    return {name: {_requirement_name(r) for r in reqs} for name, reqs in extras.items()}


def _is_guarded(handlers: list[ast.ExceptHandler]) -> bool:
    names = {ast.unparse(h.type) for h in handlers if h.type is not None}
    return bool(names & {"ImportError", "ModuleNotFoundError"}) or any(
        "ImportError" in n for n in names
    )


def _imports(tree: ast.Module) -> Iterator[tuple[str, bool]]:
    """(top-level name, runs at import time unguarded) for every absolute import."""

    def walk(nodes: list[ast.stmt], eager: bool) -> Iterator[tuple[str, bool]]:
        for node in nodes:
            if isinstance(node, ast.Import):
                yield from ((a.name.split(".")[0], eager) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.module.split(".")[0], eager
            elif isinstance(node, ast.Try):
                yield from walk(node.body, eager and not _is_guarded(node.handlers))
                for handler in node.handlers:
                    yield from walk(handler.body, eager)
                yield from walk(node.orelse + node.finalbody, eager)
            elif isinstance(node, ast.If):
                type_checking = "TYPE_CHECKING" in ast.unparse(node.test)
                yield from walk(node.body, eager and not type_checking)
                yield from walk(node.orelse, eager)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(node.body if isinstance(node.body, list) else [], False)
            elif isinstance(node, ast.ClassDef | ast.With | ast.AsyncWith | ast.For | ast.While):
                yield from walk(node.body, eager)

    yield from walk(tree.body, True)


def _guarded_extras(tree: ast.Module) -> set[tuple[str, str]]:
    """(distribution, extra) pairs named by a module-level ``except ImportError: raise
    ImportError("... agentkit-tools[mcp]")``."""
    named: set[tuple[str, str]] = set()
    for node in tree.body:
        if not isinstance(node, ast.Try) or not _is_guarded(node.handlers):
            continue
        for handler in node.handlers:
            for raised in (n for n in ast.walk(handler) if isinstance(n, ast.Raise)):
                named |= set(_NAMED_EXTRA.findall(ast.unparse(raised)))
    return named


def _module_guards(path: Path, package_root: Path) -> set[tuple[str, str]]:
    """Extras that importing ``path`` says it needs: its own guard or a parent package's
    (``import agentkit.x.y`` runs ``agentkit/x/__init__.py`` first)."""
    named = _guarded_extras(ast.parse(path.read_text()))
    for parent in path.parents:
        if parent == package_root.parent:
            break
        init = parent / "__init__.py"
        if init.is_file() and init != path:
            named |= _guarded_extras(ast.parse(init.read_text()))
    return named


def _third_party_imports(package: Path) -> dict[str, dict[str, bool]]:
    """import name -> {file: eager} over one installed package."""
    found: dict[str, dict[str, bool]] = {}
    for path in sorted(package.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for name, eager in _imports(ast.parse(path.read_text(), rel)):
            if name in sys.stdlib_module_names or name in WORKSPACE_IMPORTS:
                continue
            files = found.setdefault(name, {})
            files[rel] = files.get(rel, False) or eager
    return found


def _distributions(import_name: str) -> set[str]:
    return {_normalize(d) for d in md.packages_distributions().get(import_name, [])}


@pytest.mark.parametrize(
    ("dist", "folder", "package"), DISTRIBUTIONS, ids=[d[0] for d in DISTRIBUTIONS]
)
def test_every_import_at_import_time_is_a_core_dependency(
    dist: str, folder: Path, package: Path
) -> None:
    """``import agentkit_x.y`` must work after a plain ``pip install`` of the workspace for every
    core module; a module that needs an extra guards its import and names the extra
    (``pip install 'agentkit-tools[mcp]'``)."""
    core, extras = _core(folder), _extras(folder)
    missing = []
    for name, files in sorted(_third_party_imports(package).items()):
        dists = _distributions(name) or {_normalize(name)}
        if dists & core:
            continue
        needed_by = {
            (dist, e) for e, names in extras.items() if dists & names and e not in ("dev", "bench")
        }
        for rel in sorted(f for f, is_eager in files.items() if is_eager):
            if not needed_by & _module_guards(ROOT / rel, package):
                wanted = "|".join(sorted(e for _, e in needed_by)) or "? (declare it in an extra)"
                missing.append(
                    f"{rel} imports {name}, not a core dependency, at import time, with no"
                    f" module-level `except ImportError: raise ImportError(... {dist}[{wanted}])`"
                )
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize(
    ("dist", "folder", "package"), DISTRIBUTIONS, ids=[d[0] for d in DISTRIBUTIONS]
)
def test_every_lazy_import_is_declared_by_some_extra(
    dist: str, folder: Path, package: Path
) -> None:
    declared = _core(folder).union(*_extras(folder).values())
    undeclared = []
    for name, files in sorted(_third_party_imports(package).items()):
        dists = _distributions(name) or {_normalize(name)}
        if not dists & declared and name not in UNDECLARED_OPTIONAL:
            undeclared.append(f"{name} imported by {', '.join(sorted(files))}")
    assert not undeclared, f"declared by no extra of {dist}:\n" + "\n".join(undeclared)


def test_workspace_packages_import_only_what_their_distribution_declares() -> None:
    """agentkit-tools may import agentkit and agentkit_sandboxes (it depends on both); the
    sandboxes only agentkit; agentkit neither (it sits below them)."""
    allowed = {
        "agentkit": {"agentkit"},
        "agentkit-sandboxes": {"agentkit", "agentkit_sandboxes"},
        "agentkit-tools": {"agentkit", "agentkit_sandboxes", "agentkit_tools"},
    }
    wrong = []
    for dist, folder, package in DISTRIBUTIONS:
        core = _core(folder)
        for path in sorted(package.rglob("*.py")):
            for name, _ in _imports(ast.parse(path.read_text())):
                if name in WORKSPACE_IMPORTS - {"__future__"} and name not in allowed[dist]:
                    wrong.append(f"{path.relative_to(ROOT)} ({dist}) imports {name}")
                if name in allowed[dist] - {package.name}:
                    assert _normalize(name) in core, f"{dist} must declare {name}"
    assert not wrong, "\n".join(wrong)


def test_a_guard_counts_only_when_it_raises_naming_the_extra() -> None:
    guarded = ast.parse(
        "try:\n    import numpy\nexcept ImportError as exc:\n"
        "    raise ImportError(\"pip install 'agentkit[embedded]'\") from exc\n"
    )
    silent = ast.parse("try:\n    import numpy\nexcept ImportError:\n    numpy = None\n")
    assert _guarded_extras(guarded) == {("agentkit", "embedded")}
    assert _guarded_extras(silent) == set()


def test_the_scan_sees_guarded_and_lazy_imports() -> None:
    tree = ast.parse(
        "import a\n"
        "try:\n    import b\nexcept ImportError:\n    b = None\n"
        "if TYPE_CHECKING:\n    import c\n"
        "def f():\n    import d\n"
        "from .e import x\n"
    )
    assert dict(_imports(tree)) == {"a": True, "b": False, "c": False, "d": False}


def _load_script(name: str) -> ModuleType:
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def installed_check() -> ModuleType:
    return _load_script("installed_check")


def test_a_trainer_plugin_may_name_its_host_framework(installed_check: ModuleType) -> None:
    said = ImportError("the agentkit agent loop runs inside verl: pip install verl")
    assert installed_check.host_framework("agentkit.integrations.verl.agent_loop", said) == (
        "host verl"
    )
    assert installed_check.host_framework("agentkit.models.sglang_chat", said) is None
    silent = ModuleNotFoundError("No module named 'verl'")
    assert installed_check.host_framework("agentkit.integrations.verl.agent_loop", silent) is None


def test_clear_extra_errors_are_told_from_broken_modules(installed_check: ModuleType) -> None:
    extras = {f"agentkit[{e}]" for e in _extras()} | {"agentkit-tools[mcp]"}
    clear = ImportError("the embedded model needs numpy: pip install 'agentkit[embedded]'")
    assert installed_check.named_extra(clear, extras) == "agentkit[embedded]"
    mcp = ImportError("MCP tools need the mcp SDK: pip install 'agentkit-tools[mcp]'")
    assert installed_check.named_extra(mcp, extras) == "agentkit-tools[mcp]"
    assert (
        installed_check.named_extra(ModuleNotFoundError("No module named 'sniffio'"), extras)
        is None
    )
    assert installed_check.named_extra(ImportError("pip install 'agentkit[nope]'"), extras) is None


def test_the_walk_reports_a_module_without_a_clear_error(
    installed_check: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "demo_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fine.py").write_text("X = 1\n")
    (pkg / "extra.py").write_text(
        "raise ImportError(\"needs numpy: pip install 'agentkit[embedded]'\")\n"
    )
    (pkg / "broken.py").write_text("import not_a_real_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    report = installed_check.walk_modules("demo_pkg", {"agentkit[embedded]"})
    assert report.imported == ["demo_pkg", "demo_pkg.fine"]
    assert report.needs_extra == {"demo_pkg.extra": "agentkit[embedded]"}
    assert list(report.broken) == ["demo_pkg.broken"]
    assert "not_a_real_module_xyz" in report.broken["demo_pkg.broken"]


def test_drift_report_lists_changed_added_and_missing() -> None:
    drift = _load_script("constraints_drift")
    pinned = drift.parse_constraints("# header\nanyio==4.16.0\nSniffio==1.3.1\nold-pkg==1.0\n")
    resolved = {"anyio": "4.17.0", "sniffio": "1.3.1", "new-pkg": "2.0"}
    lines = drift.drift_lines(pinned, resolved)
    assert lines == [
        "  anyio: 4.16.0 -> 4.17.0",
        "  new-pkg: (not pinned) -> 2.0",
        "  old-pkg: 1.0 -> (not resolved)",
    ]
    assert (
        drift.drift_lines(pinned, {"anyio": "4.16.0", "sniffio": "1.3.1", "old-pkg": "1.0"}) == []
    )


def test_constraints_pin_every_core_dependency() -> None:
    drift = _load_script("constraints_drift")
    pinned = drift.parse_constraints((ROOT / "constraints.txt").read_text())
    assert _core() <= set(pinned), sorted(_core() - set(pinned))
    assert "torch" not in pinned
    for extra, names in _extras().items():
        assert names <= set(pinned), (extra, sorted(names - set(pinned)))
