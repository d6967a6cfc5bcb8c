"""The docs server's document collection: the Python language reference shipped with CPython, plus any
folders of ``.txt``/``.md`` files, loaded once and held in memory.

Folder documents are identified by ``<folder name>/<path inside it>``; nothing outside a configured
folder is ever read, whether reached through ``..``, an absolute id, or a symlink pointing out.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from podium.mcp_servers.errors import DocsPathError

logger = logging.getLogger(__name__)

EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".rst"})
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_DOCUMENTS = 20_000
ENV_DIRS = "PODIUM_DOCS_DIRS"


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    text: str
    key_terms: tuple[str, ...] = ()


def python_reference() -> list[Document]:
    """Every topic of the language reference in ``pydoc_data`` (what ``help('with')`` shows), one document each."""
    from pydoc_data.topics import topics

    docs = []
    for key, text in sorted(topics.items()):
        first = next((line.strip() for line in text.splitlines() if line.strip()), key)
        docs.append(Document(id=key, title=first, text=text.strip(), key_terms=(key,)))
    return docs


def dirs_from_env(environ: os._Environ[str] | dict[str, str] = os.environ) -> list[str]:
    """The folders named in ``PODIUM_DOCS_DIRS`` (``os.pathsep``-separated)."""
    return [part for part in (environ.get(ENV_DIRS) or "").split(os.pathsep) if part.strip()]


def check_id(doc_id: str) -> str:
    """Return ``doc_id`` if it is a plain relative id; raise ``DocsPathError`` for ``..``, absolute paths,
    backslashes or control characters, which could only be attempts to leave the collection."""
    if not doc_id or len(doc_id) > 1024:
        raise DocsPathError("document id must be 1-1024 characters")
    if any(ord(c) < 32 for c in doc_id) or "\\" in doc_id:
        raise DocsPathError(f"document id {doc_id!r} contains a control character or backslash")
    path = PurePosixPath(doc_id)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", doc_id):
        raise DocsPathError(f"document id {doc_id!r} is absolute; ids are relative to a docs folder")
    if any(part in ("..", ".") for part in doc_id.split("/")):
        raise DocsPathError(f"document id {doc_id!r} escapes its folder ('..' or '.' components)")
    return doc_id


def _title(path: Path, text: str) -> str:
    for line in text.splitlines()[:40]:
        stripped = line.strip().lstrip("#").strip()
        if stripped and not set(stripped) <= set("=-*~#^`"):
            return stripped[:200]
    return path.stem


def _files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in EXTENSIONS:
                yield Path(dirpath, name)


def load_folder(folder: str | Path, label: str) -> list[Document]:
    """Documents from one folder, ids ``<label>/<relative path>``; files whose real path leaves the folder
    (symlinks out) are refused and logged, oversized or undecodable files skipped."""
    root = Path(folder).resolve(strict=True)
    if not root.is_dir():
        raise DocsPathError(f"--docs-dir {folder!r} is not a directory")
    docs = []
    for path in _files(root):
        real = path.resolve()
        if not real.is_relative_to(root):
            logger.warning("refusing %s: it resolves outside the docs folder %s", path, root)
            continue
        if not real.is_file() or real.stat().st_size > MAX_FILE_BYTES:
            logger.warning("skipping %s: not a regular file or over %d bytes", path, MAX_FILE_BYTES)
            continue
        try:
            text = real.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as exc:
            logger.warning("skipping %s: %s", path, exc)
            continue
        rel = path.relative_to(root).as_posix()
        docs.append(Document(id=f"{label}/{rel}", title=_title(path, text), text=text))
    return docs


def load_collection(folders: Sequence[str | Path] = (), *, builtin: bool = True) -> list[Document]:
    """The whole collection: the Python reference (unless ``builtin`` is false) and every folder.

    Raises ``DocsPathError`` naming a folder that does not exist or is not a directory.
    """
    docs = python_reference() if builtin else []
    labels: set[str] = set()
    for folder in folders:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise DocsPathError(f"docs folder {str(folder)!r} does not exist or is not a directory")
        label = _unique(path.resolve().name or "docs", labels)
        docs.extend(load_folder(path, label))
    if len(docs) > MAX_DOCUMENTS:
        logger.warning("indexing only the first %d of %d documents", MAX_DOCUMENTS, len(docs))
        docs = docs[:MAX_DOCUMENTS]
    return docs


def _unique(label: str, taken: set[str]) -> str:
    candidate, n = label, 1
    while candidate in taken:
        n += 1
        candidate = f"{label}-{n}"
    taken.add(candidate)
    return candidate


def by_id(docs: Iterable[Document]) -> dict[str, Document]:
    return {doc.id: doc for doc in docs}
