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
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .errors import IndexCorruptError, IndexLockedError, StoreError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from .config import Settings

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
COLLECTION_PREFIX = "chunks-g"


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

    def __init__(self, index_dir: Path, chroma_url: str | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.chroma_url = chroma_url
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
    def build_lock(self, timeout: float = 600.0) -> Iterator[None]:
        """Hold the index's build lock, waiting up to ``timeout`` seconds for another build.

        Raises:
            IndexLockedError: Another build held the lock for longer than ``timeout``.
        """
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
                            f"Another process is rebuilding the index in {self.index_dir}. "
                            "Wait for it to finish, then try again."
                        ) from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

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
        except Exception as exc:
            where = self.chroma_url or str(self.index_dir / "chroma")
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

    def collection(self, name: str) -> Collection:
        """An existing collection.

        Raises:
            IndexCorruptError: The collection is missing or unreadable.
        """
        try:
            return self.client.get_collection(name)
        except Exception as exc:
            raise IndexCorruptError(
                f"The index collection {name!r} is missing from the Chroma store ({exc}). "
                "Run `assistant index --full` to rebuild it."
            ) from exc

    def create_collection(self, name: str) -> Collection:
        """A new, empty collection (an older leftover of the same name is replaced)."""
        try:
            with contextlib.suppress(Exception):
                self.client.delete_collection(name)
            return self.client.create_collection(name, metadata={"hnsw:space": "cosine"})
        except Exception as exc:
            raise StoreError(f"Cannot create collection {name!r} in the Chroma store: {exc}") from exc

    def collect_garbage(self, keep: Manifest) -> None:
        """Remove generations older than the one before ``keep``, and leftovers of failed builds.

        The generation just before ``keep`` stays, so a reader that opened it a moment ago
        can finish its queries.
        """
        keep_gens = {keep.generation, keep.generation - 1}
        try:
            names = [c if isinstance(c, str) else c.name for c in self.client.list_collections()]
        except Exception as exc:  # cleanup is best effort; the index itself is already swapped
            logger.warning("Could not list old collections to clean up: %s", exc)
            names = []
        for name in names:
            if name.startswith(COLLECTION_PREFIX):
                gen = name[len(COLLECTION_PREFIX) :]
                if gen.isdigit() and int(gen) not in keep_gens:
                    with contextlib.suppress(Exception):
                        self.client.delete_collection(name)
        for path in self.index_dir.glob("bm25-g*"):
            gen = path.name[len("bm25-g") :]
            if gen.isdigit() and int(gen) not in keep_gens:
                shutil.rmtree(path, ignore_errors=True)

    def quarantine_local(self) -> Path | None:
        """Move a broken embedded store aside so a rebuild can start clean; returns where it went."""
        if self.chroma_url:
            return None
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        broken = self.index_dir / "chroma"
        if not broken.exists():
            return None
        target = self.index_dir / f"chroma.broken-{int(time.time())}"
        broken.rename(target)
        logger.warning("Moved the damaged Chroma store to %s; rebuilding from the corpus", target)
        return target

    def describe(self) -> dict[str, Any]:
        """Where the store is, for status displays."""
        return {"index_dir": str(self.index_dir), "chroma": self.location}
