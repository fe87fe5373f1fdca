"""The corpus: source files on disk, read into `SourceDocument`s with their front matter."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorpusError, CorpusFileError

logger = logging.getLogger(__name__)

#: File endings the corpus reads; anything else in the folder is ignored.
SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt")

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class SourceDocument:
    """One corpus file, read and decoded.

    ``text`` is the whole file, front matter included, so character offsets into it
    are offsets into the file as a person sees it.
    """

    source: str  # path relative to the corpus folder, with forward slashes
    path: Path
    text: str
    title: str
    kind: str  # "article", "faq" or "note" (a user file without front matter)
    summary: str
    body_start: int  # offset where the content after the front matter starts
    sha256: str = field(repr=False)


@dataclass(frozen=True)
class Corpus:
    """The readable documents of a corpus folder, and the files that could not be read."""

    root: Path
    documents: tuple[SourceDocument, ...]
    problems: tuple[CorpusFileError, ...]

    @property
    def hashes(self) -> dict[str, str]:
        """Content hash of each readable file, keyed by its relative path."""
        return {doc.source: doc.sha256 for doc in self.documents}


def load_corpus(root: Path, max_file_bytes: int = 5_000_000) -> Corpus:
    """Read every supported file under ``root``.

    Files that cannot be used (empty, unreadable, not UTF-8, too large, binary) are reported
    in ``Corpus.problems`` and logged; they never stop the others from loading.

    Args:
        root: The corpus folder.
        max_file_bytes: Files larger than this are skipped with a problem.

    Returns:
        The corpus.

    Raises:
        CorpusError: ``root`` is not a readable folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(
            f"Corpus folder {root} does not exist. Create it and add .md or .txt files, "
            "or point ASSISTANT_CORPUS at the folder that holds them."
        )
    documents: list[SourceDocument] = []
    problems: list[CorpusFileError] = []
    for path in _walk(root):
        try:
            documents.append(read_document(path, root, max_file_bytes))
        except CorpusFileError as exc:
            logger.warning("Skipping corpus file %s", exc)
            problems.append(exc)
    return Corpus(root=root, documents=tuple(documents), problems=tuple(problems))


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    # followlinks=False: a symlinked folder (or a symlink loop) is never descended into.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(SUPPORTED_SUFFIXES):
                continue
            found.append(Path(dirpath) / name)
    return found


def add_file(root: Path, name: str, data: bytes, max_file_bytes: int = 5_000_000) -> SourceDocument:
    """Add a new file to the corpus folder, only if it is a readable text document.

    Args:
        root: The corpus folder.
        name: The file name (any folder part is dropped); it must end in .md, .markdown or .txt.
        data: The file's bytes.
        max_file_bytes: The largest file accepted.

    Returns:
        The document as the corpus will read it.

    Raises:
        CorpusFileError: The name, the type or the content is not acceptable, or the file exists.
            Nothing is written then.
    """
    name = Path(name.replace("\\", "/")).name
    target = root / name
    if not name or name.startswith(".") or not name.lower().endswith(SUPPORTED_SUFFIXES):
        raise CorpusFileError(name or "(no name)", f"only {', '.join(SUPPORTED_SUFFIXES)} files can be added")
    if target.exists():
        raise CorpusFileError(name, "a file of that name is already in the corpus; rename it and try again")
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".upload-", suffix=".tmp")  # hidden: never indexed
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            read_document(Path(tmp), root, max_file_bytes)
        except CorpusFileError as exc:
            raise CorpusFileError(name, _upload_reason(exc.reason)) from None
        os.link(tmp, target)  # fails rather than replace a file that appeared meanwhile
    except FileExistsError:
        raise CorpusFileError(name, "a file of that name is already in the corpus; rename it and try again") from None
    finally:
        os.unlink(tmp)
    logger.info("Added %s to the corpus", target)
    return read_document(target, root, max_file_bytes)


def _upload_reason(reason: str) -> str:
    """A reader's complaint, with advice about files already in the corpus swapped for upload advice."""
    problem, _, advice = reason.partition("; ")
    if "remove it" in advice or "ASSISTANT_" in advice:
        return f"{problem}; nothing was added, fix the file and upload it again"
    return reason


def read_document(path: Path, root: Path, max_file_bytes: int = 5_000_000) -> SourceDocument:
    """Read one corpus file.

    Raises:
        CorpusFileError: The file is empty, unreadable, binary, too large or not UTF-8.
    """
    try:
        size = path.stat().st_size
        if size > max_file_bytes:
            raise CorpusFileError(
                path,
                f"file is {size:,} bytes, over the {max_file_bytes:,}-byte limit; split it or raise ASSISTANT_MAX_FILE_BYTES",
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusFileError(path, f"cannot be read ({exc.strerror or exc}); check its permissions") from exc
    if b"\x00" in raw:
        raise CorpusFileError(path, "looks like a binary file, not text; remove it from the corpus")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusFileError(path, f"is not valid UTF-8 (byte {exc.start}); re-save it as UTF-8") from exc
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise CorpusFileError(path, "is empty; add some text or remove it")

    meta, body_start = parse_front_matter(text)
    if not text[body_start:].strip():
        raise CorpusFileError(path, "has front matter but no content")
    source = path.relative_to(root).as_posix()
    title = meta.get("title") or _first_heading(text[body_start:]) or _title_from_name(path)
    return SourceDocument(
        source=source,
        path=path,
        text=text,
        title=title,
        kind=meta.get("kind", "note"),
        summary=meta.get("summary", ""),
        body_start=body_start,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def parse_front_matter(text: str) -> tuple[dict[str, str], int]:
    """Split YAML front matter from a document.

    Returns:
        The front matter as a dict of strings, and the offset where the body starts.
    """
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, 0
    import yaml

    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        logger.warning("Ignoring front matter that is not valid YAML")
        return {}, match.end()
    if not isinstance(data, dict):
        return {}, match.end()
    return {str(k): str(v).strip() for k, v in data.items() if v is not None}, match.end()


def _first_heading(body: str) -> str | None:
    match = re.search(r"^#\s+(.+?)\s*#*\s*$", body, re.MULTILINE)
    return match.group(1) if match else None


def _title_from_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()
