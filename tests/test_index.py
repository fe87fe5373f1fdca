"""Building and refreshing the index: real model, real Chroma store on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from assistant import Assistant, Settings
from assistant.embeddings import Embedder
from assistant.errors import StoreError
from assistant.ingest import Indexer
from assistant.retrieval import DEFAULT_FUSION, Fusion, HybridRetriever, Passage, merge_rankings
from assistant.store import Store


def _indexer(settings: Settings, embedder: Embedder) -> Indexer:
    return Indexer(settings, embedder, Store.from_settings(settings))


def _ids_in_store(indexer: Indexer) -> set[str]:
    manifest = indexer.store.read_manifest()
    assert manifest is not None
    return set(indexer.store.collection(manifest.collection).get()["ids"])


def test_first_build_indexes_every_chunk(mini_corpus: Path, settings: Settings, embedder: Embedder) -> None:
    indexer = _indexer(settings, embedder)
    before = embedder.texts_embedded

    report = indexer.build()

    assert (report.added, report.updated, report.removed, report.unchanged) == (2, 0, 0, 0)
    assert report.full and report.chunks_embedded == report.chunks_total
    assert report.sentences_embedded > report.chunks_total  # every chunk has sentences of its own
    assert report.chunks_embedded + report.sentences_embedded == embedder.texts_embedded - before
    manifest = indexer.store.read_manifest()
    assert manifest is not None and set(manifest.files) == {"lora.md", "prompts.txt"}
    assert _ids_in_store(indexer) == {cid for f in manifest.files.values() for cid in f.chunk_ids}


def test_unchanged_corpus_embeds_nothing(mini_corpus: Path, settings: Settings, embedder: Embedder) -> None:
    _indexer(settings, embedder).build()
    calls = embedder.calls

    report = _indexer(settings, embedder).build()

    assert embedder.calls == calls
    assert not report.changed and report.chunks_embedded == 0 and report.unchanged == 2
    assert report.summary().startswith("Index is up to date: 2 files unchanged, nothing embedded")


def test_editing_one_file_embeds_only_its_changed_chunks(
    mini_corpus: Path, settings: Settings, embedder: Embedder
) -> None:
    indexer = _indexer(settings, embedder)
    indexer.build()
    old_ids = _ids_in_store(indexer)
    path = mini_corpus / "prompts.txt"
    path.write_text(path.read_text() + "\nChain-of-thought prompts ask the model to reason step by step.\n")
    texts = embedder.texts_embedded

    report = indexer.build()

    new_ids = _ids_in_store(indexer)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 0, 1)
    assert report.chunks_embedded == len(new_ids - old_ids) == 1  # only the new paragraph
    assert report.sentences_embedded == 1  # and its one sentence; the others are reused
    assert embedder.texts_embedded - texts == 2
    assert (
        Assistant.open(settings, embedder=embedder).retrieve("step by step reasoning", k=1)[0].source == "prompts.txt"
    )


def test_deleting_a_file_removes_its_chunks(mini_corpus: Path, settings: Settings, embedder: Embedder) -> None:
    indexer = _indexer(settings, embedder)
    indexer.build()
    (mini_corpus / "lora.md").unlink()
    calls = embedder.calls

    report = indexer.build()

    assert (report.removed, report.unchanged, report.chunks_embedded) == (1, 1, 0)
    assert embedder.calls == calls
    bot = Assistant.open(settings, embedder=embedder)
    assert {p.source for p in bot.retrieve("What is LoRA?", k=5)} == {"prompts.txt"}


def test_new_model_or_full_flag_rebuilds_everything(mini_corpus: Path, settings: Settings, embedder: Embedder) -> None:
    indexer = _indexer(settings, embedder)
    total = indexer.build().chunks_total
    assert indexer.build(full=True).chunks_embedded == total
    manifest = indexer.store.read_manifest()
    assert manifest is not None
    indexer.store.write_manifest(type(manifest)(**{**manifest.__dict__, "embed_model": "some-other-model"}))
    report = indexer.build()
    assert report.full and report.chunks_embedded == total


class _FailingEmbedder(Embedder):
    """A real embedder whose second batch fails, as a crashing model would."""

    def embed_documents(self, texts, progress=None):  # type: ignore[no-untyped-def]
        if len(texts) > 1:
            super().embed_documents(texts[:1], progress)
            raise RuntimeError("embedder crashed")
        return super().embed_documents(texts, progress)


def test_a_build_that_fails_midway_keeps_the_old_index(
    mini_corpus: Path, settings: Settings, embedder: Embedder
) -> None:
    Assistant.open(settings, embedder=embedder)
    generation = Store.from_settings(settings).read_manifest().generation  # type: ignore[union-attr]
    # two sections, so two chunks (short paragraphs of one section are joined into one chunk)
    (mini_corpus / "new.md").write_text("# New\n\n## One\n\nFirst new paragraph.\n\n## Two\n\nSecond new paragraph.\n")
    failing = _FailingEmbedder("failing", lambda: embedder.model, batch_size=1)

    with pytest.raises(RuntimeError, match="embedder crashed"):
        Indexer(settings, failing, Store.from_settings(settings)).build()

    store = Store.from_settings(settings)
    assert store.read_manifest().generation == generation  # type: ignore[union-attr]
    assert f"chunks-g{generation + 1}" not in [c.name for c in store.client.list_collections()]
    manifest = store.read_manifest()
    assert manifest is not None
    assert HybridRetriever(embedder, store, manifest).retrieve("What is LoRA?", 1)[0].source == "lora.md"


def test_a_killed_build_keeps_the_old_index(mini_corpus: Path, settings: Settings, embedder: Embedder) -> None:
    Assistant.open(settings, embedder=embedder)
    (mini_corpus / "big.md").write_text(
        "\n\n".join(f"## Part {i}\n\nParagraph {i} about prompts and tuning." for i in range(40))
    )
    script = textwrap.dedent(
        """
        import os, signal
        from assistant import Settings
        from assistant.ingest import Indexer

        def die(done, total):
            if done >= 8:
                os.kill(os.getpid(), signal.SIGKILL)

        Indexer.from_defaults(Settings.from_env()).build(progress=die)
        """
    )
    env = {**os.environ, "ASSISTANT_EMBED_BATCH_SIZE": "4"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]

    store = Store.from_settings(settings)
    manifest = store.read_manifest()
    assert manifest is not None and manifest.generation == 1
    assert HybridRetriever(embedder, store, manifest).retrieve("What is LoRA?", 1)[0].source == "lora.md"
    bot = Assistant(settings, embedder, store)
    report = bot.refresh()  # the next build finishes the job
    assert report.added == 1 and bot.retriever.manifest.generation == 2


def test_two_builds_at_once_leave_one_consistent_index(
    mini_corpus: Path, settings: Settings, embedder: Embedder
) -> None:
    _indexer(settings, embedder).build()
    (mini_corpus / "extra.md").write_text("# Extra\n\nTemperature controls randomness in sampling.\n")
    reports, errors = [], []

    def build() -> None:
        try:
            reports.append(_indexer(settings, embedder).build())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    assert sorted(r.added for r in reports) == [0, 1]  # the second waited, then found nothing to do
    indexer = _indexer(settings, embedder)
    manifest = indexer.store.read_manifest()
    assert manifest is not None and manifest.generation == 2
    assert _ids_in_store(indexer) == {cid for f in manifest.files.values() for cid in f.chunk_ids}


def test_bad_files_are_skipped_and_named(mini_corpus: Path, settings: Settings, embedder: Embedder) -> None:
    (mini_corpus / "broken.txt").write_bytes(b"caf\xe9 not utf-8 \xff")  # (a leading FF FE would be UTF-16)
    (mini_corpus / "empty.md").write_text("")

    report = _indexer(settings, embedder).build()

    assert report.documents == 2
    assert sorted(p.path.name for p in report.problems) == ["broken.txt", "empty.md"]


def test_damaged_manifest_is_rebuilt_from_the_corpus(mini_corpus: Path, settings: Settings, embedder: Embedder) -> None:
    Assistant.open(settings, embedder=embedder)
    (settings.index_dir / "manifest.json").write_text('{"format": 1, "generat')

    bot = Assistant.open(settings, embedder=embedder)

    assert bot.retrieve("What is LoRA?", k=1)[0].source == "lora.md"


def test_damaged_chroma_store_is_moved_aside_and_rebuilt(
    mini_corpus: Path, settings: Settings, embedder: Embedder
) -> None:
    # Built by another process, as in real use: Chroma caches one open store per path and process.
    subprocess.run([sys.executable, "-m", "assistant.cli", "index"], check=True, capture_output=True, timeout=300)
    chroma = settings.index_dir / "chroma"
    for path in chroma.rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage" * 10)

    bot = Assistant.open(settings, embedder=embedder)

    assert bot.retrieve("What is LoRA?", k=1)[0].source == "lora.md"
    assert list(settings.index_dir.glob("chroma.broken-*"))


def test_open_builds_a_missing_index_and_retrieves_the_right_passages(bot: Assistant) -> None:
    cases = {
        "What is LoRA?": "Low-Rank Adaptation (LoRA)",
        "How long does fine-tuning take?": "often spanning weeks or months",
        "Can I use both approaches together?": "not mutually exclusive",
        "What are the advantages of prompt engineering?": "Requires minimal computational resources",
        "How do I avoid overfitting during training?": "Dropout",
    }
    for question, fragment in cases.items():
        passages = bot.retrieve(question, k=3)
        assert any(fragment in p.text for p in passages), question
        assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
        assert len({p.id for p in passages}) == len(passages)
    top = bot.retrieve("What is LoRA?", k=3)[0]
    original = (bot.settings.corpus_dir / top.source).read_text(encoding="utf-8")
    assert original[top.start : top.end] == top.text and top.title and top.section


def test_writes_larger_than_chromas_batch_limit_are_split(
    mini_corpus: Path, settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chromadb.api.models.Collection import Collection

    real_add = Collection.add

    def limited_add(self: Collection, ids: list[str], *args: object, **kwargs: object) -> None:
        if len(ids) > 2:  # Chroma's own check, with its limit (5,461 here) lowered to fit a small corpus
            raise ValueError(f"Batch size of {len(ids)} is greater than max batch size of 2")
        real_add(self, ids, *args, **kwargs)

    monkeypatch.setattr(Collection, "add", limited_add)
    store = Store.from_settings(settings)
    store._max_batch_size = 2
    report = Indexer(settings, embedder, store).build()
    manifest = store.read_manifest()
    assert manifest is not None and report.chunks_total == manifest.chunks > 2
    assert store.collection(manifest.collection).count() == manifest.chunks


def test_a_chroma_write_that_fails_keeps_the_old_index(
    mini_corpus: Path, settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chromadb.api.models.Collection import Collection

    Assistant.open(settings, embedder=embedder)
    generation = Store.from_settings(settings).read_manifest().generation  # type: ignore[union-attr]
    (mini_corpus / "new.md").write_text("# New\n\nA paragraph about evaluation sets.\n")

    def full_disk(self: Collection, *args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(Collection, "add", full_disk)
    with pytest.raises(StoreError, match="Writing chunks to the Chroma store failed after 0: No space left on device"):
        Indexer(settings, embedder, Store.from_settings(settings)).build()
    monkeypatch.undo()

    store = Store.from_settings(settings)
    assert store.read_manifest().generation == generation  # type: ignore[union-attr]
    assert f"chunks-g{generation + 1}" not in [c.name for c in store.client.list_collections()]
    assert Indexer(settings, embedder, store).build().chunks_embedded == 1  # the next build completes


def test_threads_retrieving_at_once_each_get_their_own_similarities(bot: Assistant) -> None:
    questions = ["What is LoRA?", "How much data does fine-tuning need?", "What is prompt engineering?"] * 4
    expected = {q: [(p.id, p.similarity) for p in bot.retrieve(q, 5)] for q in set(questions)}
    results: dict[int, list[tuple[str, float]]] = {}

    def run(i: int, question: str) -> None:
        results[i] = [(p.id, p.similarity) for p in bot.retrieve(question, 5)]

    threads = [threading.Thread(target=run, args=(i, q)) for i, q in enumerate(questions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i] == expected[q] for i, q in enumerate(questions))


def _passage(pid: str, similarity: float = 0.5) -> Passage:
    return Passage(pid, f"text {pid}", "a.md", "A", "", 0, 6, 0.0, similarity)


def test_merge_rankings_puts_what_both_searches_found_first() -> None:
    a, b, c, d = (_passage(x) for x in "abcd")
    again = _passage("b", similarity=0.9)  # the same passage found by the second search

    merged = merge_rankings([a, b, c], [again, d])

    assert [p.id for p in merged] == ["b", "a", "d"]  # as long as the longest ranking
    assert merged[0] is b  # the first search's copy, with its similarity
    assert merge_rankings([], []) == []


def test_keyword_hits_on_words_every_passage_holds_are_left_out(settings: Settings, embedder: Embedder) -> None:
    # Every section says "garden"; one also says "compost". Matches on "garden" alone score next to
    # nothing (the word's IDF is ~0), and their order would only add noise to the fusion.
    chores = ["Water", "Weed", "Mow", "Prune", "Rake", "Sweep", "Mulch", "Edge", "Feed", "Net", "Stake"]
    sections = ["## Compost\n\nThe garden compost heap takes kitchen scraps and leaves."] + [
        f"## {chore}\n\n{chore} the garden on {day}s." for chore, day in zip(chores, ["Mon", "Tues", "Wednes"] * 4)
    ]
    settings.corpus_dir.mkdir()
    (settings.corpus_dir / "garden.md").write_text("# Garden notes\n\n" + "\n\n".join(sections) + "\n")
    Assistant.open(settings, embedder=embedder)
    store = Store.from_settings(settings)
    manifest = store.read_manifest()
    assert manifest is not None and manifest.chunks == len(sections)

    def keyword(fusion: Fusion) -> list[str]:
        hits = HybridRetriever(embedder, store, manifest, fusion=fusion).keyword("garden compost", 20)
        return [node.get_content() for node, _ in hits]

    assert keyword(DEFAULT_FUSION) == ["The garden compost heap takes kitchen scraps and leaves."]
    assert len(keyword(replace(DEFAULT_FUSION, keyword_floor=0.0))) == len(sections)  # as before the floor


def test_a_search_finds_the_exact_nearest_sentences(tmp_path: Path, embedder: Embedder) -> None:
    """Chroma's graph search is approximate; at its default breadth it missed a true neighbour for 4
    to 8 of these 500 queries on this corpus's ~350 sentences, and which ones changed from build to
    build, so the same question could get another answer after a rebuild (`store.COLLECTION_METADATA`)."""
    import numpy as np

    manual = Path(__file__).resolve().parent.parent / "bench" / "corpora" / "manual"
    bot = Assistant.open(Settings(corpus_dir=manual, index_dir=tmp_path / "index"), embedder=embedder)
    sentences = bot.retriever._sentences
    stored = sentences.get(include=["embeddings"])
    ids, vectors = stored["ids"], np.asarray(stored["embeddings"])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    k = 60  # as many as a question asks of the sentence collection (`retrieval.SENTENCES_PER_PASSAGE`)

    position = {i: n for n, i in enumerate(ids)}
    misses = 0
    for _ in range(500):  # questions near what the corpus says: a sentence's vector, moved a little
        query = vectors[rng.integers(len(ids))] + rng.normal(0, 0.05, vectors.shape[1])
        query /= np.linalg.norm(query)
        cosines = vectors @ query
        exact = np.sort(cosines)[::-1][:k]
        found = np.sort(
            [cosines[position[i]] for i in sentences.query(query_embeddings=[query.tolist()], n_results=k)["ids"][0]]
        )[::-1]
        misses += not np.allclose(found, exact, atol=1e-6)  # the same similarities: ties may swap ids
    assert misses == 0
