"""Documents and search hits, and reading a folder of user files into documents.

A folder is read recursively: ``.txt``, ``.md``, ``.rst`` files become one document each (title from
the first heading or line), ``.html``/``.htm`` files are converted to text (title from ``<title>``),
and ``.jsonl`` files hold one document per line (``{"id", "title", "text", "url"}``; ``body`` or
``content`` are accepted for ``text``). Document ids are the relative path (or the JSONL record's
id), stable across rebuilds, so that answers can cite them.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
HTML_SUFFIXES = (".html", ".htm")
JSONL_SUFFIXES = (".jsonl",)
MAX_FILE_BYTES = 10_000_000


class Document(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    text: str
    url: str | None = None


class SearchHit(BaseModel):
    """One ranked result, from the local index or a web provider."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    snippet: str
    url: str | None = None
    score: float | None = None
    source: str = "local"


class DocumentProblem(BaseModel):
    path: str
    reason: str


def read_folder(root: Path, problems: list[DocumentProblem] | None = None) -> Iterator[Document]:
    """Every document under ``root``, in path order; unreadable files are reported in
    ``problems`` (when given) and skipped."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        suffix = path.suffix.lower()
        if suffix not in TEXT_SUFFIXES + HTML_SUFFIXES + JSONL_SUFFIXES:
            continue
        relative = path.relative_to(root).as_posix()
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
            raw = path.read_text(encoding="utf-8", errors="replace")
            if suffix in JSONL_SUFFIXES:
                yield from _jsonl_documents(raw, relative)
            elif suffix in HTML_SUFFIXES:
                title, text = html_to_text(raw)
                yield Document(id=relative, title=title or path.stem, text=text)
            else:
                yield Document(id=relative, title=_text_title(raw) or path.stem, text=raw.strip())
        except (OSError, ValueError) as exc:
            if problems is not None:
                problems.append(DocumentProblem(path=relative, reason=str(exc)))


def _jsonl_documents(raw: str, relative: str) -> Iterator[Document]:
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise ValueError(f"line {number}: expected an object")
        text = record.get("text") or record.get("body") or record.get("content") or ""
        doc_id = str(record.get("id") or f"{relative}#{number}")
        title = str(record.get("title") or _text_title(str(text)) or doc_id)
        url = record.get("url")
        yield Document(
            id=doc_id, title=title, text=str(text), url=str(url) if url is not None else None
        )


def _text_title(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped and not set(stripped) <= set("=-~*"):
            return stripped[:200]
    return ""


_DROP = re.compile(r"<(script|style|noscript|template|svg)\b.*?</\1\s*>", re.S | re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.S | re.I)
_BREAK = re.compile(
    r"<\s*(br|hr|/p|/div|/li|/h[1-6]|/tr|/section|/article|/nav|/header|/footer|/ul|/ol"
    r"|/table|/form|/blockquote|/pre)\b[^>]*>",
    re.I,
)
_TAG = re.compile(r"<[^>]+>")


def html_to_text(markup: str) -> tuple[str, str]:
    """A plain, dependency-free HTML to text conversion: (title, text)."""
    found = _TITLE.search(markup)
    title = html.unescape(_TAG.sub("", found.group(1))).strip() if found else ""
    body = _DROP.sub(" ", markup)
    body = _TITLE.sub(" ", body)
    body = _BREAK.sub("\n", body)
    text = html.unescape(_TAG.sub(" ", body))
    lines = (re.sub(r"[^\S\n]+", " ", line).strip() for line in text.splitlines())
    return title, "\n".join(line for line in lines if line)
