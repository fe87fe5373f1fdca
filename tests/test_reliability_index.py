"""The index is never lost: lock waits, failed and concurrent builds, damaged files, disk leaks, stale readers.

Real model, real Chroma stores on disk; a build "in another process" is a second `Store` and
`Indexer` over the same folder (pins and the build lock are flock locks, which conflict between
separate open files even inside one process), or a real subprocess where the point is a separate
Chroma instance.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant import Assistant, Settings
from assistant.embeddings import Embedder
from assistant.errors import CorpusError, IndexLockedError, StoreError
from assistant.ingest import Indexer
from assistant.store import Store


def _other_process(settings: Settings, embedder: Embedder) -> Indexer:
    """An indexer with its own store object, as another process would have."""
    return Indexer(settings, embedder, Store.from_settings(settings))


def _snapshot(index_dir: Path) -> dict[str, int]:
    """Every file under the index (but the lock and pins) with its size."""
    return {
        str(p.relative_to(index_dir)): p.stat().st_size
        for p in sorted(index_dir.rglob("*"))
        if p.is_file() and p.name != ".lock" and ".readers" not in p.parts
    }


def test_readers_never_wait_on_a_build_and_a_timeout_is_not_corruption(
    mini_corpus: Path, settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    Assistant.open(settings, embedder=embedder)
    before = _snapshot(settings.index_dir)
    monkeypatch.setenv("ASSISTANT_LOCK_TIMEOUT", "1")
    with _lock_held_by_another_process(settings.index_dir):
        started = time.perf_counter()
        bot = Assistant.open(settings, embedder=embedder)  # up to date: no lock needed
        (mini_corpus / "new.md").write_text("# New\n\nEvaluation sets measure both approaches.\n")
        stale = Assistant.open(settings, embedder=embedder)  # stale, but a build runs: answer from what is there
        seconds = time.perf_counter() - started
        assert bot.retrieve("What is LoRA?", k=1)[0].source == "lora.md"
        assert stale.status().generation == 1
        with pytest.raises(IndexLockedError, match="waited 1 s"):
            stale.refresh()  # an explicit rebuild waits, then says so; nothing is repaired
        (settings.index_dir / "manifest.json").rename(settings.index_dir / "manifest.away")
        with pytest.raises(IndexLockedError):
            Assistant.open(settings, embedder=embedder)  # no usable index: it may wait, and then fail
        (settings.index_dir / "manifest.away").rename(settings.index_dir / "manifest.json")

    assert seconds < 1.0  # neither open waited for the lock (it was held for two minutes)
    assert _snapshot(settings.index_dir) == before
    assert not list(settings.index_dir.glob("chroma.broken-*"))
    assert stale.refresh().added == 1 and stale.status().generation == 2  # once the lock is free


def test_the_cli_answers_from_the_current_index_while_another_process_builds(
    mini_corpus: Path, settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from assistant.cli import cli

    Assistant.open(settings, embedder=embedder)
    (mini_corpus / "new.md").write_text("# New\n\nEvaluation sets measure both approaches.\n")
    monkeypatch.setenv("ASSISTANT_LOCK_TIMEOUT", "30")
    with _lock_held_by_another_process(settings.index_dir):
        started = time.perf_counter()
        result = CliRunner().invoke(cli, ["retrieve", "What is LoRA?", "-k", "1"])
        seconds = time.perf_counter() - started

    assert result.exit_code == 0, result.output
    assert "lora.md" in result.output
    assert seconds < 15  # the lock was held for two minutes and the wait allowed 30 s: it did not wait


class _lock_held_by_another_process:
    """``flock`` on the build lock in a child process, released on exit."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    def __enter__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(self.index_dir / ".lock")], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


_HOLD_LOCK = (
    "import fcntl, sys, time\n"
    "fh = open(sys.argv[1], 'a+')\n"
    "fcntl.flock(fh.fileno(), fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "time.sleep(120)\n"
)


def test_a_rebuild_that_fails_keeps_the_previous_index_whole(
    mini_corpus: Path, settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chromadb.api.models.Collection import Collection

    bot = Assistant.open(settings, embedder=embedder)
    before = _snapshot(settings.index_dir)
    (mini_corpus / "new.md").write_text("# New\n\nA paragraph about evaluation sets.\n")

    def full_disk(self: Collection, *args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Collection, "add", full_disk)
    with pytest.raises(StoreError, match="No space left on device"):
        bot.refresh(full=True)  # the page's and the API's rebuild path
    monkeypatch.undo()

    assert _snapshot(settings.index_dir) == before  # the failed build removed all it wrote, nothing else
    assert not list(settings.index_dir.glob("chroma.broken-*"))
    assert bot.status().generation == 1
    assert bot.retrieve("What is LoRA?", k=1)[0].source == "lora.md"
    assert Assistant.open(settings, embedder=embedder).status().generation == 2  # the next build works


def test_a_generation_without_sentence_vectors_still_answers_and_says_why(
    mini_corpus: Path, settings: Settings, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    bot = Assistant.open(settings, embedder=embedder)
    ranked = [p.source for p in bot.retrieve("What is LoRA?", k=2)]
    store = Store(settings.index_dir)
    manifest = store.read_manifest()
    assert manifest is not None
    store.client.delete_collection(manifest.sentence_collection)  # as in an index of an older release

    reader = Assistant.open(settings, embedder=embedder)

    assert [p.source for p in reader.retrieve("What is LoRA?", k=2)][:1] == ranked[:1]
    assert reader.ask("What is LoRA?").answerable
    assert "ranked without sentence vectors" in caplog.text and "assistant index --full" in caplog.text


def test_a_live_reader_keeps_its_generation_through_two_external_rebuilds_then_switches(
    mini_corpus: Path, settings: Settings, embedder: Embedder
) -> None:
    bot = Assistant.open(settings, embedder=embedder)
    other = _other_process(settings, embedder)
    (mini_corpus / "e1.md").write_text("# Sampling\n\nTemperature controls randomness in sampling.\n")
    other.build()
    (mini_corpus / "prompts.txt").unlink()
    other.build()  # generation 3: garbage collection would drop generation 1, which the reader holds

    names = {c.name for c in other.store.client.list_collections()}
    assert names == {f"{kind}-g{g}" for kind in ("chunks", "sentences") for g in (1, 2, 3)}
    assert bot.retriever is not None and bot.status().generation == 3  # the next question switches
    switch = bot.last_switch
    assert switch is not None and (switch.previous, switch.generation) == (1, 3)
    assert switch.reason == "a newer index was built" and bot.status().switches == 1
    sources = {p.source for p in bot.retrieve("temperature randomness prompts", k=5)}
    assert "e1.md" in sources and "prompts.txt" not in sources  # no answer from a deleted file

    (mini_corpus / "e2.md").write_text("# Tokens\n\nTokens are pieces of words.\n")
    other.build()  # generation 4: the reader moved on, so generation 1 (and 2) go
    assert {c.name for c in other.store.client.list_collections()} == {
        f"{kind}-g{g}" for kind in ("chunks", "sentences") for g in (3, 4)
    }
    assert bot.check_index() is not None and bot.check_index() is None  # one switch, then nothing new


def _build_then_damage_mid_file(settings: Settings) -> None:
    """Index the corpus in another process, then overwrite 64 KiB in the middle of Chroma's SQLite file."""
    # Built by another process, as in real use: Chroma caches one open store per path and process.
    subprocess.run([sys.executable, "-m", "assistant.cli", "index"], check=True, capture_output=True, timeout=300)
    db = settings.index_dir / "chroma" / "chroma.sqlite3"
    with open(db, "r+b") as fh:
        fh.seek(db.stat().st_size // 2)
        fh.write(os.urandom(65536))


def test_mid_file_sqlite_corruption_is_detected_quarantined_and_rebuilt(
    mini_corpus: Path, settings: Settings, embedder: Embedder
) -> None:
    _build_then_damage_mid_file(settings)

    report = _other_process(settings, embedder).build()  # `assistant index`: never "up to date" on a damaged store

    assert report.repaired and "malformed" in report.repaired and report.full
    assert report.summary().startswith("The index store was damaged (chroma.sqlite3: database disk image is malformed)")
    assert len(list(settings.index_dir.glob("chroma.broken-*"))) == 1
    assert [p.name for p in settings.index_dir.glob("bm25-g*")] == [f"bm25-g{report.generation}"]  # none orphaned
    bot = Assistant.open(settings, embedder=embedder)
    assert bot.retrieve("What is LoRA?", k=1)[0].source == "lora.md"


@pytest.mark.parametrize("where", ["header", "middle"])
def test_a_damaged_store_is_repaired_when_opened_or_on_the_first_question(
    mini_corpus: Path, settings: Settings, embedder: Embedder, where: str
) -> None:
    subprocess.run([sys.executable, "-m", "assistant.cli", "index"], check=True, capture_output=True, timeout=300)
    db = settings.index_dir / "chroma" / "chroma.sqlite3"
    with open(db, "r+b") as fh:
        if where == "header":
            fh.write(b"garbage" * 4096)  # the header and the first pages: Chroma cannot even start
        else:
            fh.seek(db.stat().st_size // 2)
            fh.write(os.urandom(65536))  # Chroma starts; the search itself fails (or panics)

    bot = Assistant.open(settings, embedder=embedder)
    top = bot.retrieve("What is LoRA?", k=1)[0]

    assert top.source == "lora.md"
    assert bot.last_switch is not None and bot.last_switch.reason == "the index was damaged and has been rebuilt"
    assert len(list(settings.index_dir.glob("chroma.broken-*"))) == 1


def test_a_store_damaged_under_the_real_corpus_is_repaired_by_the_next_ask(
    corpus_dir: Path, settings: Settings
) -> None:
    _build_then_damage_mid_file(settings)  # here Chroma fails while the retriever opens, before any search

    ask = [sys.executable, "-m", "assistant.cli", "ask", "What is LoRA?"]
    done = subprocess.run(ask, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "LoRA" in done.stdout and "the store is damaged; rebuilding it" in done.stderr
    assert len(list(settings.index_dir.glob("chroma.broken-*"))) == 1


def test_disk_use_is_bounded_across_rebuilds_and_failures(
    mini_corpus: Path, settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chromadb.api.models.Collection import Collection

    indexer = _other_process(settings, embedder)
    indexer.build()
    (settings.index_dir / ".manifest-crashed.json").write_text("{}")  # a build killed before its rename
    (settings.index_dir / "bm25-g7.tmp").mkdir()
    for stamp in ("20260101-000000-1", "20260102-000000-1", "20260103-000000-1"):
        (settings.index_dir / f"chroma.broken-{stamp}").mkdir()
    real_add = Collection.add
    for i in range(6):
        (mini_corpus / "prompts.txt").write_text(f"Prompts, version {i}.\n\nFew-shot examples guide the model.\n")
        if i == 3:  # one failed build among them
            monkeypatch.setattr(Collection, "add", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "disk full")))
            with pytest.raises(StoreError):
                indexer.build(full=True)
            monkeypatch.setattr(Collection, "add", real_add)
        else:
            indexer.build(full=i % 2 == 0)

    chroma = settings.index_dir / "chroma"
    segment_dirs = [p for p in chroma.iterdir() if p.is_dir()]
    collections = [c.name for c in indexer.store.client.list_collections()]
    chunk_gens = sorted(int(c.removeprefix("chunks-g")) for c in collections if c.startswith("chunks-g"))
    assert len(collections) == 4 and len(segment_dirs) <= 4  # one vector folder per live collection
    assert sorted(c for c in collections if c.startswith("sentences-g")) == [f"sentences-g{g}" for g in chunk_gens]
    assert sorted(p.name for p in settings.index_dir.glob("bm25-g*")) == [f"bm25-g{g}" for g in chunk_gens]
    assert not list(settings.index_dir.glob(".manifest-*"))
    assert [p.name for p in settings.index_dir.glob("chroma.broken-*")] == ["chroma.broken-20260103-000000-1"]


def test_a_briefly_unreadable_file_keeps_its_chunks(
    mini_corpus: Path, settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = Assistant.open(settings, embedder=embedder)
    lora = mini_corpus / "lora.md"
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:  # what the OS answers for a file made unreadable (chmod 000)
        if self == lora:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    plan = bot.indexer.plan()
    assert plan.kept == ("lora.md",) and not plan.removed and plan.up_to_date
    (mini_corpus / "new.md").write_text("# New\n\nA paragraph about evaluation sets.\n")
    report = bot.refresh()
    monkeypatch.undo()

    assert (report.added, report.removed, report.kept) == (1, 0, 1)
    assert report.summary().endswith("1 file kept as indexed (cannot be read now).")
    assert any("cannot be read (Permission denied)" in str(p) for p in report.problems)
    assert bot.retrieve("What is LoRA?", k=1)[0].source == "lora.md"  # still answered, from generation 2
    assert bot.status().generation == 2 and bot.status().documents == 3
    assert bot.refresh().chunks_embedded == 0  # readable again and unchanged: nothing to do


def test_a_missing_or_empty_corpus_folder_leaves_the_index_answering(
    mini_corpus: Path, settings: Settings, embedder: Embedder
) -> None:
    Assistant.open(settings, embedder=embedder)
    before = _snapshot(settings.index_dir)
    mini_corpus.rename(mini_corpus.with_name("corpus.away"))

    bot = Assistant.open(settings, embedder=embedder)

    assert bot.retrieve("What is LoRA?", k=1)[0].source == "lora.md"
    with pytest.raises(CorpusError, match="does not exist"):
        bot.refresh()  # an explicit rebuild refuses, and keeps the index
    mini_corpus.mkdir()
    assert Assistant.open(settings, embedder=embedder).retrieve("What is LoRA?", k=1)[0].source == "lora.md"
    assert _snapshot(settings.index_dir) == before


def test_pins_are_released_by_flock_when_a_reader_goes(settings: Settings) -> None:
    store = Store.from_settings(settings)
    pin = store.pin(3)
    assert store.pinned(3) and not store.pinned(4)
    with open(settings.index_dir / ".readers" / "g3") as fh, pytest.raises(BlockingIOError):
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    pin.release()
    assert not store.pinned(3)
