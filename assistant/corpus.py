"""The corpus: source files on disk, read into `SourceDocument`s with their front matter."""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import htmldoc, rst
from .errors import CorpusError, CorpusFileError, CorpusFileUnreadableError, printable_path
from .markup import first_heading

logger = logging.getLogger(__name__)

#: File endings the corpus reads; anything else in the folder is ignored.
SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".rst", ".html", ".htm")
#: Files read as HTML (`htmldoc`): not UTF-8, they are read in the encoding they declare (`_decode`).
HTML_SUFFIXES = (".html", ".htm")
#: Files in another markup, by ending: how to find their title without rendering them, and their
#: Markdown rendering, which is what the chunker reads (`as_markdown`).
RENDERED = {
    ".rst": (rst.title, rst.to_markdown),
    **{suffix: (htmldoc.title, htmldoc.to_markdown) for suffix in HTML_SUFFIXES},
}

#: The front matter keys the engine uses; any other key is ignored, whatever its value.
FRONT_MATTER_KEYS = ("title", "kind", "summary")

#: Bounds on front matter, far above what a title, a kind and a summary need: a YAML alias bomb of
#: 429 bytes expanded to 2.8 GB through `yaml.safe_load`; the bounded reader below never expands
#: anything and stops at these limits.
MAX_FRONT_MATTER_CHARS = 64_000
MAX_FRONT_MATTER_DEPTH = 16
MAX_FRONT_MATTER_EVENTS = 10_000

#: Plain YAML scalars that mean "no value".
_YAML_NULLS = frozenset({"", "~", "null", "Null", "NULL"})

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class SourceDocument:
    """One corpus file, read and decoded.

    ``text`` is the whole file, front matter included, so character offsets into it
    are offsets into the file as a person sees it. A reStructuredText or HTML file is read as
    the Markdown it renders to (`as_markdown`), and its passages' offsets count characters of that.
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
            f"Corpus folder {printable_path(root)} does not exist. Create it and add .md, .txt, .rst or .html files, "
            "or point ASSISTANT_CORPUS at the folder that holds them."
        )
    documents: list[SourceDocument] = []
    problems: list[CorpusFileError] = []
    paths, walk_problems = _walk(root)
    problems.extend(walk_problems)
    for path in paths:
        try:
            documents.append(read_document(path, root, max_file_bytes))
        except CorpusFileError as exc:
            problems.append(exc)
    for problem in problems:
        logger.warning("Skipping corpus file %s", problem)
    return Corpus(root=root, documents=tuple(documents), problems=tuple(problems))


def _walk(root: Path) -> tuple[list[Path], list[CorpusFileError]]:
    """The supported files under ``root``, and the ones that are skipped for their name or place."""
    found: list[Path] = []
    problems: list[CorpusFileError] = []

    def unreadable_folder(exc: OSError) -> None:
        folder = Path(exc.filename) if exc.filename else root
        problems.append(
            CorpusFileUnreadableError(
                folder, f"folder cannot be read ({exc.strerror or exc}); its files are skipped, check its permissions"
            )
        )

    # followlinks=False: a symlinked folder (or a symlink loop) is never descended into.
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable_folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.lower().endswith(SUPPORTED_SUFFIXES):
                continue
            path = Path(dirpath) / name
            if name.startswith("."):
                if not name.startswith((".upload-", ".#")):  # our upload temporaries, editors' lock files
                    problems.append(
                        CorpusFileError(path, "is hidden (its name starts with '.'); rename it to index it")
                    )
                continue
            reason = _bad_name(path.relative_to(root).as_posix())
            if reason:
                problems.append(CorpusFileError(path, reason))
                continue
            found.append(path)
    return found, problems


def _bad_name(source: str) -> str | None:
    """Why a file's path (relative to the corpus) cannot be used as a citation, if it cannot."""
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8; rename it"
    if printable_path(source) != source:
        return "its name holds control or text-direction characters; rename it"
    return None


def add_file(root: Path, name: str, data: bytes, max_file_bytes: int = 5_000_000) -> SourceDocument:
    """Add a new file to the corpus folder, only if it is a readable text document.

    Args:
        root: The corpus folder.
        name: The file name (any folder part is dropped); it must end in one of `SUPPORTED_SUFFIXES`.
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
    reason = _bad_name(name)
    if reason:
        raise CorpusFileError(name, f"{reason} and upload it again")
    try:
        exists = target.exists() or target.is_symlink()
        if not exists:
            root.mkdir(parents=True, exist_ok=True)
            # Hidden, so never indexed; its name ends as the file's does, which says how to read it.
            fd, tmp = tempfile.mkstemp(dir=root, prefix=".upload-", suffix=".tmp" + Path(name).suffix.lower())
    except OSError as exc:  # a name too long for the file system, a read-only folder, ...
        raise CorpusFileError(
            name, f"cannot be written to the corpus folder ({exc.strerror or exc}); nothing was added"
        ) from None
    if exists:
        raise CorpusFileError(name, "a file of that name is already in the corpus; rename it and try again")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # like any file the user creates, not mkstemp's private 0600
        try:
            read_document(Path(tmp), root, max_file_bytes)
        except CorpusFileError as exc:
            raise CorpusFileError(name, _upload_reason(exc.reason)) from None
        os.link(tmp, target)  # fails rather than replace a file that appeared meanwhile
    except FileExistsError:
        raise CorpusFileError(name, "a file of that name is already in the corpus; rename it and try again") from None
    except OSError as exc:  # a name too long for the file system, a full disk, ...
        raise CorpusFileError(
            name, f"cannot be written to the corpus folder ({exc.strerror or exc}); nothing was added"
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    logger.info("Added %s to the corpus", target)
    return read_document(target, root, max_file_bytes)


def _umask() -> int:
    """The process's file creation mask (read by setting it, so set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _upload_reason(reason: str) -> str:
    """A reader's complaint, with advice about files already in the corpus swapped for upload advice."""
    problem, _, advice = reason.partition("; ")
    if "remove it" in advice or "ASSISTANT_" in advice:
        return f"{problem}; nothing was added, fix the file and upload it again"
    return reason


def read_document(path: Path, root: Path, max_file_bytes: int = 5_000_000) -> SourceDocument:
    """Read one corpus file.

    Raises:
        CorpusFileError: The file is empty, binary, too large, not UTF-8 (or UTF-16 with a byte order
            mark), a link that leaves ``root``, or its front matter is unusable.
        CorpusFileUnreadableError: The file exists but cannot be read now (permissions, I/O).
    """
    _check_inside(path, root)
    try:
        size = path.stat().st_size
        if size > max_file_bytes:
            raise CorpusFileError(
                path,
                f"file is {size:,} bytes, over the {max_file_bytes:,}-byte limit; split it or raise ASSISTANT_MAX_FILE_BYTES",
            )
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise CorpusFileError(path, "cannot be read (it is a broken link or was just removed)") from exc
    except OSError as exc:
        raise CorpusFileUnreadableError(path, f"cannot be read ({exc.strerror or exc}); check its permissions") from exc
    text = _decode(path, raw)
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise CorpusFileError(path, "is empty; add some text or remove it")

    try:
        meta, body_start = parse_front_matter(text)
    except ValueError as exc:
        raise CorpusFileError(path, f"{exc}; fix it or remove the front matter") from None
    if not text[body_start:].strip():
        raise CorpusFileError(path, "has front matter but no content")
    source = path.relative_to(root).as_posix()
    heading = RENDERED.get(path.suffix.lower(), (first_heading,))[0]
    title = meta.get("title") or heading(text[body_start:]) or _title_from_name(path)
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


def as_markdown(doc: SourceDocument) -> SourceDocument:
    """``doc`` as the chunker reads it: a reStructuredText or HTML file as its Markdown rendering
    (`rst.to_markdown`, `htmldoc.to_markdown`; front matter left out), any other file as it is.
    Rendered when chunked, not when read: a corpus is read at every open, to tell whether the
    index is stale."""
    render = RENDERED.get(Path(doc.source).suffix.lower())
    if render is None:
        return doc
    return replace(doc, text=render[1](doc.text[doc.body_start :]), body_start=0)


def _check_inside(path: Path, root: Path) -> None:
    """Refuse a link that leads out of the corpus folder (to ``/etc/passwd``, say)."""
    if not path.is_symlink() and not any(p.is_symlink() for p in path.parents if p != root and root in p.parents):
        return
    try:
        target = path.resolve(strict=True)
        inside = target.is_relative_to(Path(root).resolve(strict=True))
    except (OSError, RuntimeError) as exc:  # a broken link or a loop
        raise CorpusFileError(path, f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if not inside:
        raise CorpusFileError(path, "is a link to a file outside the corpus folder; links out of it are not followed")


def _decode(path: Path, raw: bytes) -> str:
    """The file's text: UTF-8 (with or without a byte order mark), or UTF-16 with one; an HTML
    file that is not UTF-8 in the encoding it declares ("charset=ISO-8859-1"), else Windows-1252."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise CorpusFileError(path, f"is not valid UTF-16 (byte {exc.start}); re-save it as UTF-8") from exc
    if b"\x00" in raw:
        raise CorpusFileError(path, "looks like a binary file, not text; remove it from the corpus")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if path.suffix.lower() in HTML_SUFFIXES:
            return htmldoc.decode(raw)  # in the encoding the page declares, as a browser reads it
        raise CorpusFileError(path, f"is not valid UTF-8 (byte {exc.start}); re-save it as UTF-8") from exc


def parse_front_matter(text: str) -> tuple[dict[str, str], int]:
    """Split YAML front matter from a document.

    Only ``title``, ``kind`` and ``summary`` are read, as text; other keys are ignored. The YAML is
    read as a stream of parser events, never constructed: no tag is resolved (dates, numbers,
    ``!!python/...``), no alias is expanded, and size, nesting and length are bounded, so a hostile
    header costs microseconds, not gigabytes.

    Returns:
        The front matter as a dict of strings, and the offset where the body starts.

    Raises:
        ValueError: The front matter is not valid YAML, too large or too deep, uses aliases, or
            gives a used key a value that is not text. The message names the problem.
    """
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, 0
    block = match.group(1)
    if len(block) > MAX_FRONT_MATTER_CHARS:
        raise ValueError(f"front matter is {len(block):,} characters, over the {MAX_FRONT_MATTER_CHARS:,} limit")
    return _read_front_matter(block), match.end()


def _read_front_matter(block: str) -> dict[str, str]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    meta: dict[str, str] = {}
    depth = 0
    key: str | None = None  # the top-level key whose value comes next
    expect_key = True
    try:
        for count, event in enumerate(yaml.parse(block, Loader=loader)):
            if count > MAX_FRONT_MATTER_EVENTS:
                raise ValueError(f"front matter has over {MAX_FRONT_MATTER_EVENTS:,} YAML elements")
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise ValueError("front matter uses YAML anchors or aliases, which are not accepted")
            if isinstance(event, yaml.DocumentEndEvent):
                break  # only the first document counts
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_FRONT_MATTER_DEPTH:
                    raise ValueError(f"front matter nests deeper than {MAX_FRONT_MATTER_DEPTH} levels")
                if depth == 1 and isinstance(event, yaml.SequenceStartEvent):
                    return {}  # not a mapping: nothing to read
                if depth == 2 and not expect_key and key in FRONT_MATTER_KEYS:
                    raise ValueError(f"front matter '{key}' must be text, not a list or a mapping")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
                if depth == 1:
                    expect_key = True
            elif isinstance(event, yaml.ScalarEvent):
                if depth == 0:
                    return {}  # a bare scalar, not a mapping
                if depth > 1:
                    continue
                if expect_key:
                    key, expect_key = event.value, False
                    continue
                expect_key = True
                if key in FRONT_MATTER_KEYS and not (event.implicit[0] and event.value in _YAML_NULLS):
                    meta[key] = event.value.strip()
            if depth == 1 and isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                expect_key = True
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 2}: " if mark is not None else ""  # +2: the opening --- and 1-based
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"front matter is not valid YAML ({where}{problem})") from None
    return meta


def _title_from_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()
