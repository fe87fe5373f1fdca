"""Where the index lives: a Chroma store (embedded on disk, or a server), its manifest and its lock.

Each build writes a new *generation*: a fresh Chroma collection and BM25 folder. The manifest
names the current generation and is replaced atomically only once the new one is complete, so
a build that dies midway leaves the previous generation in charge and fully usable.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .errors import IndexCorruptError, IndexDamagedError, IndexLockedError, StoreError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from .config import Settings

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
COLLECTION_PREFIX = "chunks-g"
#: Each generation's sentence vectors (`Manifest.sentence_collection`) live in a collection of their own.
SENTENCE_PREFIX = "sentences-g"
#: Every collection's HNSW settings: cosine distance, and a search breadth (``ef``) twice Chroma's
#: default of 100. Its graph search is approximate, and the graph differs from build to build: at
#: 100, five builds of the same corpus returned different neighbours for 2 of 59 (handbook), 4 of 64
#: (manual) and 7 of 64 (osguide) blind in-scope questions, enough to move a blind figure by a
#: question from one run to the next. Of 500 queries near the manual's 347 sentences, 4 to 8 found
#: a top 60 less similar than the true one at 100, none at 200
#: (`test_a_search_finds_the_exact_nearest_sentences`); near the Open Source Guides' 459, 7 at 100
#: and none at 200. At 200 no question's neighbours changed between five builds of those corpora.
#: The graph is built with the same breadth (``construction_ef``, Chroma's default 100): once the
#: manual's sentences changed (blockquotes read whole), 1 of 28 builds at 100 missed a true
#: neighbour for one of those 500 queries, 0 of 16 at 200 (and 0 of 10 of the Open Source Guides);
#: a build took as long (10.3 s against 10.3 s for the manual).
COLLECTION_METADATA = {"hnsw:space": "cosine", "hnsw:search_ef": 200, "hnsw:construction_ef": 200}

#: Seconds a build waits for another build's lock before `IndexLockedError` (``ASSISTANT_LOCK_TIMEOUT``).
DEFAULT_LOCK_TIMEOUT = 600.0

#: Damaged stores moved aside (``chroma.broken-*``) that are kept for inspection; older ones are deleted.
KEEP_BROKEN_COPIES = 1

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _lock_timeout_from_env() -> float:
    raw = os.environ.get("ASSISTANT_LOCK_TIMEOUT", "")
    try:
        return float(raw) if raw else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        logger.warning("ASSISTANT_LOCK_TIMEOUT=%r is not a number; waiting %.0f s", raw, DEFAULT_LOCK_TIMEOUT)
        return DEFAULT_LOCK_TIMEOUT


class GenerationPin:
    """A shared lock on one generation's pin file: while held, garbage collection keeps that generation.

    A process that answers from a generation holds its pin; flock releases it when the process dies,
    so a crashed reader never keeps a generation forever.
    """

    def __init__(self, path: Path, generation: int) -> None:
        self.generation = generation
        self.path = path
        self._fh: Any = None
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            fh = open(path, "a+")  # noqa: SIM115 - held open until release()
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
            try:  # garbage collection may have removed the file while we waited: pin the file in place
                if os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino:
                    self._fh = fh
                    return
            except FileNotFoundError:
                pass
            fh.close()
        raise StoreError(f"Cannot pin index generation {generation} in {path.parent}")

    def release(self) -> None:
        """Let garbage collection remove the generation (once no other reader holds it)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None

    def __del__(self) -> None:
        self.release()


@dataclass(frozen=True)
class FileEntry:
    """What the manifest remembers of one corpus file."""

    sha256: str
    chunk_ids: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    """The description of the current index generation."""

    generation: int
    embed_model: str
    chunker_version: str
    files: dict[str, FileEntry]
    chunks: int
    built_at: float
    store: str  # "local" or the Chroma server URL
    format: int = MANIFEST_FORMAT
    documents: int = field(default=0)

    @property
    def collection(self) -> str:
        """Name of the Chroma collection that holds this generation."""
        return f"{COLLECTION_PREFIX}{self.generation}"

    @property
    def sentence_collection(self) -> str:
        """Name of the Chroma collection that holds this generation's sentence vectors."""
        return f"{SENTENCE_PREFIX}{self.generation}"

    def to_json(self) -> str:
        """Serialise for ``manifest.json``."""
        data = asdict(self)
        data["files"] = {k: {"sha256": v.sha256, "chunk_ids": list(v.chunk_ids)} for k, v in self.files.items()}
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse ``manifest.json``; raises ``ValueError``/``KeyError``/``TypeError`` when malformed."""
        data = json.loads(text)
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unknown manifest format {data.get('format')!r}")
        files = {k: FileEntry(v["sha256"], tuple(v["chunk_ids"])) for k, v in data.pop("files").items()}
        return cls(files=files, **data)


class Store:
    """The index folder and the Chroma store behind it."""

    def __init__(self, index_dir: Path, chroma_url: str | None = None, lock_timeout: float | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.chroma_url = chroma_url
        #: Seconds `build_lock` waits by default; ``ASSISTANT_LOCK_TIMEOUT`` or 600.
        self.lock_timeout = _lock_timeout_from_env() if lock_timeout is None else lock_timeout
        self._client: ClientAPI | None = None
        self._max_batch_size: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store the settings describe."""
        return cls(settings.index_dir, settings.chroma_url)

    @property
    def manifest_path(self) -> Path:
        return self.index_dir / "manifest.json"

    @property
    def location(self) -> str:
        """``local`` for the embedded store, else the server URL."""
        return self.chroma_url or "local"

    @property
    def compiled_model_dir(self) -> Path:
        """Folder of the embedding model's ONNX export (see `assistant.onnx_encoder`)."""
        return self.index_dir / "model-onnx"

    def bm25_dir(self, generation: int) -> Path:
        """Folder of the persisted BM25 index for a generation."""
        return self.index_dir / f"bm25-g{generation}"

    # -- manifest ---------------------------------------------------------------------------

    def read_manifest(self) -> Manifest | None:
        """The current manifest, or None when there is no index yet.

        Raises:
            IndexCorruptError: The manifest exists but cannot be parsed.
        """
        try:
            text = self.manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexCorruptError(f"Cannot read {self.manifest_path}: {exc}. Run `assistant index --full`.") from exc
        try:
            return Manifest.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(
                f"The index manifest {self.manifest_path} is damaged ({exc}). "
                "Run `assistant index --full` to rebuild it from the corpus."
            ) from exc

    def write_manifest(self, manifest: Manifest) -> None:
        """Atomically replace the manifest: readers see the old one or the new one, never half."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.index_dir, prefix=".manifest-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(manifest.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.manifest_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    # -- locking ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def build_lock(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the index's build lock, waiting up to ``timeout`` seconds for another build.

        Args:
            timeout: Seconds to wait; `lock_timeout` when None; 0 tries once.

        Raises:
            IndexLockedError: Another build held the lock for longer than ``timeout``. This says
                nothing about the index itself, which stays as it is.
        """
        timeout = self.lock_timeout if timeout is None else timeout
        self.index_dir.mkdir(parents=True, exist_ok=True)
        with open(self.index_dir / ".lock", "a+") as fh:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexLockedError(
                            f"Another process is rebuilding the index in {self.index_dir} "
                            f"(waited {timeout:g} s). Wait for it to finish, then try again."
                        ) from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def build_running(self) -> bool:
        """Whether another process (or thread) holds the build lock right now."""
        try:
            with self.build_lock(timeout=0):
                return False
        except IndexLockedError:
            return True

    # -- generations in use -----------------------------------------------------------------

    def _pin_path(self, generation: int) -> Path:
        return self.index_dir / ".readers" / f"g{generation}"

    def pin(self, generation: int) -> GenerationPin:
        """Keep ``generation`` from garbage collection until the pin is released (or the process ends)."""
        return GenerationPin(self._pin_path(generation), generation)

    def pinned(self, generation: int) -> bool:
        """Whether some process holds a pin on ``generation``."""
        path = self._pin_path(generation)
        try:
            fh = open(path)  # noqa: SIM115
        except FileNotFoundError:
            return False
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return False

    # -- Chroma -----------------------------------------------------------------------------

    @property
    def client(self) -> ClientAPI:
        """The Chroma client, created on first use, telemetry off."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> ClientAPI:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        try:
            if self.chroma_url:
                url = urlparse(self.chroma_url)
                if url.scheme not in ("http", "https") or not url.hostname:
                    raise StoreError(f"ASSISTANT_CHROMA_URL={self.chroma_url!r} is not an http(s)://host:port URL")
                return chromadb.HttpClient(
                    host=url.hostname,
                    port=url.port or (443 if url.scheme == "https" else 8000),
                    ssl=url.scheme == "https",
                    settings=chroma_settings,
                )
            path = self.index_dir / "chroma"
            path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        except StoreError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # Chroma's Rust core panics (a BaseException) on a malformed file
            where = self.chroma_url or str(self.index_dir / "chroma")
            if not self.chroma_url:
                self._forget_local_system()
                problem = self.integrity_problem()
                if problem:
                    raise IndexDamagedError(
                        f"The Chroma store at {where} is damaged ({problem}). "
                        "Run `assistant index` to move it aside and rebuild it from the corpus."
                    ) from exc
            raise StoreError(
                f"Cannot open the Chroma store at {where}: {exc}. "
                + (
                    "Check that the Chroma server is running and reachable."
                    if self.chroma_url
                    else "Delete that folder and run `assistant index --full` to rebuild it from the corpus."
                )
            ) from exc

    @property
    def max_batch_size(self) -> int:
        """The most records Chroma accepts in one write."""
        if self._max_batch_size is None:
            try:
                self._max_batch_size = int(self.client.get_max_batch_size())
            except Exception:  # an older server without the call: its documented default
                self._max_batch_size = 5461
        return self._max_batch_size

    def _forget_local_system(self) -> None:
        """Drop Chroma's cached store for our folder, so the next client opens the files afresh.

        Chroma keeps one store per path and process; one that failed to start, or whose folder was
        moved aside, would otherwise be handed out again (``'RustBindingsAPI' object has no attribute
        'bindings'``).
        """
        from chromadb.api.shared_system_client import SharedSystemClient

        key = str(self.index_dir / "chroma")
        system = SharedSystemClient._identifier_to_system.pop(key, None)
        SharedSystemClient._identifier_to_refcount.pop(key, None)
        if system is not None:
            with contextlib.suppress(BaseException):
                system.stop()
        self._client = None

    def integrity_problem(self) -> str | None:
        """What is wrong with the embedded store's SQLite file, or None when it checks out (or is remote).

        Runs SQLite's ``quick_check``, which reads the whole file: called after a failure, not on
        every open.
        """
        if self.chroma_url:
            return None
        path = self.index_dir / "chroma" / "chroma.sqlite3"
        if not path.exists():
            return None
        import sqlite3

        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
                rows = db.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc):
                return None
            return f"{path.name}: {exc}"
        if rows != [("ok",)]:
            return f"{path.name}: {'; '.join(str(r[0]) for r in rows[:3])}"
        return None

    def collection(self, name: str) -> Collection:
        """An existing collection.

        Raises:
            IndexDamagedError: The store's files are damaged.
            IndexCorruptError: The collection is missing or unreadable.
        """
        client = self.client
        try:
            return client.get_collection(name)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a Rust panic, for a damaged file
            problem = self.integrity_problem()
            if problem:
                raise IndexDamagedError(
                    f"The Chroma store at {self.index_dir / 'chroma'} is damaged ({problem}). "
                    "Run `assistant index` to move it aside and rebuild it from the corpus."
                ) from exc
            raise IndexCorruptError(
                f"The index collection {name!r} is missing from the Chroma store ({exc}). "
                "Run `assistant index --full` to rebuild it."
            ) from exc

    def create_collection(self, name: str) -> Collection:
        """A new, empty collection (an older leftover of the same name is replaced)."""
        try:
            with contextlib.suppress(Exception):
                self.client.delete_collection(name)
            return self.client.create_collection(name, metadata=COLLECTION_METADATA)
        except Exception as exc:
            raise StoreError(f"Cannot create collection {name!r} in the Chroma store: {exc}") from exc

    def collect_garbage(self, keep: Manifest) -> None:
        """Bound what stays on disk: old generations, their files, and leftovers of failed builds.

        Kept: ``keep``, the generation just before it (a reader that opened it a moment ago can
        finish its queries), and any generation a live process has pinned (`pin`). Removed: other
        collections and BM25 folders, HNSW folders of collections that no longer exist, pin files
        of removed generations, temporary manifests and BM25 folders, and all but the newest
        damaged store moved aside. Call it under the build lock.
        """
        keep_gens = {keep.generation, keep.generation - 1}
        try:
            names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
        except Exception as exc:  # cleanup is best effort; the index itself is already swapped
            logger.warning("Could not list old collections to clean up: %s", exc)
            names = []
        for name in names:
            gen = _generation_of(name, COLLECTION_PREFIX)
            if gen is None:
                gen = _generation_of(name, SENTENCE_PREFIX)
            if gen is not None and gen not in keep_gens:
                if self.pinned(gen):
                    logger.info("Keeping index generation %d: a running process still answers from it", gen)
                    continue
                with contextlib.suppress(Exception):
                    self.client.delete_collection(name)
        listed = {_generation_of(name, COLLECTION_PREFIX) for name in names} if names else None
        for path in self.index_dir.glob("bm25-g*"):
            gen = _generation_of(path.name, "bm25-g")
            if gen == keep.generation:
                continue
            orphan = listed is not None and gen not in listed  # its collection is gone (a store moved aside)
            if path.name.endswith(".tmp") or orphan or (gen not in keep_gens and not self.pinned(gen)):
                shutil.rmtree(path, ignore_errors=True)
        self._remove_stale_pins(keep_gens)
        for path in self.index_dir.glob(".manifest-*.json"):  # manifests are written under this lock
            with contextlib.suppress(OSError):
                path.unlink()
        for path in sorted(self.index_dir.glob("chroma.broken-*"))[: -KEEP_BROKEN_COPIES or None]:
            logger.info("Removing an old damaged copy of the store, %s", path)
            shutil.rmtree(path, ignore_errors=True)
        self.remove_orphan_segments()

    def _remove_stale_pins(self, keep_gens: set[int]) -> None:
        for path in (self.index_dir / ".readers").glob("g*"):
            gen = _generation_of(path.name, "g")
            if gen is None or gen in keep_gens:
                continue
            with open(path) as fh:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                with contextlib.suppress(OSError):
                    path.unlink()

    def remove_orphan_segments(self) -> list[Path]:
        """Delete HNSW folders that no collection of the embedded store uses any more.

        Chroma's ``delete_collection`` drops a collection from its SQLite catalogue but leaves its
        vector folder on disk (one folder per build: 2 -> 11 folders after 10 rebuilds). Folders are
        matched against the catalogue's segments; when it cannot be read, nothing is removed.

        Returns:
            The folders removed.
        """
        chroma = self.index_dir / "chroma"
        db = chroma / "chroma.sqlite3"
        if self.chroma_url or not db.exists():
            return []
        import sqlite3

        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
                live = {row[0] for row in conn.execute("SELECT id FROM segments")}
        except sqlite3.Error as exc:
            logger.warning("Could not read the store's catalogue to remove unused vector folders: %s", exc)
            return []
        removed = []
        for path in chroma.iterdir():
            if path.is_dir() and _UUID.match(path.name) and path.name not in live:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def quarantine_local(self) -> Path | None:
        """Move a damaged embedded store aside so a rebuild can start clean; returns where it went.

        Only for a store whose files are damaged (`IndexDamagedError`): every generation in it goes.
        """
        if self.chroma_url:
            return None
        if self._client is not None:
            with contextlib.suppress(BaseException):
                self._client.close()
        self._forget_local_system()
        broken = self.index_dir / "chroma"
        if not broken.exists():
            return None
        target = self.index_dir / f"chroma.broken-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        broken.rename(target)
        logger.warning("Moved the damaged Chroma store to %s; rebuilding it from the corpus", target)
        return target

    def describe(self) -> dict[str, Any]:
        """Where the store is, for status displays."""
        return {"index_dir": str(self.index_dir), "chroma": self.location}


def _generation_of(name: str, prefix: str) -> int | None:
    """The generation number in ``chunks-g12``, ``sentences-g12`` or ``bm25-g12``, or None for other names."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    return int(rest) if rest.isdigit() else None
