"""Every import the docs show works on the installed workspace.

The README, ``docs/*.md`` and the examples' READMEs show code with ``from agentkit... import``
lines; after ``scripts/install.sh`` each must resolve to a real name (issue #13: "gives every
import the docs show"). Multi-line imports (``from x import (\\n a,\\n b)``) are read whole.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").glob("*/README.md")]
)
_FROM = re.compile(r"^\s*from\s+(agentkit[\w.]*)\s+import\s+(\([^)]*\)|[^\n#]+)", re.M)
_IMPORT = re.compile(r"^\s*import\s+(agentkit[\w.]*)\s*$", re.M)


def code_blocks(text: str) -> list[str]:
    """The fenced blocks tagged python (or untagged), fence lines read one by one."""
    blocks: list[str] = []
    current: list[str] | None = None
    keep = False
    for line in text.splitlines():
        fence = line.strip()
        if fence.startswith("```"):
            if current is None:
                current, keep = [], fence[3:].strip() in ("", "python", "py")
            else:
                if keep:
                    blocks.append("\n".join(current) + "\n")
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def shown_imports(text: str) -> list[tuple[str, list[str]]]:
    """(module, names) for each agentkit import in the text's code blocks."""
    found: list[tuple[str, list[str]]] = []
    for block in code_blocks(text):
        for module, names in _FROM.findall(block):
            cleaned = names.strip().strip("()").replace("\n", " ")
            parts = [n.strip().split(" as ")[0] for n in cleaned.split(",")]
            found.append((module, [p for p in parts if p and p != "\\"]))
        found += [(module, []) for module in _IMPORT.findall(block)]
    return found


def test_the_reader_sees_single_and_parenthesised_imports() -> None:
    text = "```\nfrom agentkit import NotShown\n```\ntext\n```bash\nfrom agentkit import No\n```\n```python\nfrom agentkit import Agent, tool\nfrom agentkit.x import (\n    a,\n    b as c,\n)\nimport agentkit.y\n```\n"
    assert shown_imports(text) == [
        ("agentkit", ["NotShown"]),
        ("agentkit", ["Agent", "tool"]),
        ("agentkit.x", ["a", "b"]),
        ("agentkit.y", []),
    ]


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_shown_import_resolves(doc: Path) -> None:
    broken = []
    for module, names in shown_imports(doc.read_text(encoding="utf-8")):
        try:
            loaded = importlib.import_module(module)
        except ImportError as exc:
            broken.append(f"import {module}: {exc}")
            continue
        broken += [
            f"from {module} import {n}: no such name" for n in names if not hasattr(loaded, n)
        ]
    assert not broken, "\n".join(broken)
