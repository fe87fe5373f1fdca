"""Indexing: full builds against raw embedding throughput of the same texts, and incremental rebuilds."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from assistant import Assistant, Settings
from assistant.chunking import chunk_document
from assistant.corpus import load_corpus
from assistant.embeddings import Embedder
from assistant.ingest import chunk_to_node, sentence_nodes
from bench.baseline import LlamaIndexDefault
from bench.common import ROOT, Row, child_env

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding


def _seconds(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def onnx_export(embedder: Embedder, work: Path) -> list[Row]:
    """The one-time ONNX export of the model, which later builds copy and answers run on."""
    folder = work / "model-onnx"
    export_s, _ = _seconds(lambda: embedder.compile_to(folder))
    embedder.use_compiled(folder)
    return [Row("indexing", "ONNX export of the model (once; needs torch)", export_s, unit="s")]


def throughput(corpus: Path, work: Path, embedder: Embedder, base_model: BaseEmbedding, label: str) -> list[Row]:
    """A full build of ``corpus`` in chunks/s, beside raw `SentenceTransformer.encode` of the same texts.

    The model is loaded before either clock starts; the raw floor embeds exactly the texts the
    build embeds, made by the build's own functions: each chunk and each of its sentences
    (`ingest.chunk_to_node`, `ingest.sentence_nodes`). How many
    texts that is per chunk is a row of its own (the default embeds one per chunk).
    """
    from llama_index.core.schema import MetadataMode

    nodes = [chunk_to_node(c) for doc in load_corpus(corpus).documents for c in chunk_document(doc)]
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes + sentence_nodes(nodes)]
    raw_model = embedder.model._model
    raw_s, _ = _seconds(lambda: raw_model.encode(texts, batch_size=embedder.batch_size))
    settings = Settings(corpus_dir=corpus, index_dir=work / f"index-{label}")
    before = embedder.texts_embedded
    build_s, bot = _seconds(lambda: Assistant.open(settings, embedder=embedder))
    embedded = embedder.texts_embedded - before
    assert embedded == len(texts), f"the build embedded {embedded} texts, the raw floor {len(texts)}"
    base_s, base = _seconds(lambda: LlamaIndexDefault.build(corpus, base_model))
    n = len(nodes)
    return [
        Row("indexing", f"full build, {label} ({n:,} chunks)", build_s, base_s, raw_s, "raw encode", "s"),
        Row(
            "indexing",
            f"chunks/s, {label}",
            n / build_s,
            base.chunks / base_s,
            n / raw_s,
            "raw encode",
            "chunks/s",
            ">= 90% of raw",
            better="higher",
        ),
        Row("indexing", f"texts embedded per chunk, {label}", len(texts) / n, 1.0, unit="texts"),
    ]


def rebuilds(corpus: Path, work: Path, embedder: Embedder, base_model: BaseEmbedding) -> list[Row]:
    """Unchanged rebuild (in process and as `assistant index`) and a one-file-changed rebuild."""
    corpus_copy = work / "rebuild-corpus"
    shutil.copytree(corpus, corpus_copy)
    settings = Settings(corpus_dir=corpus_copy, index_dir=work / "rebuild-index")
    bot = Assistant.open(settings, embedder=embedder)
    base_full_s, _ = _seconds(lambda: LlamaIndexDefault.build(corpus_copy, base_model))

    before = embedder.texts_embedded
    unchanged_s, report = _seconds(bot.refresh)
    assert embedder.texts_embedded == before and not report.changed, "an unchanged rebuild embedded something"

    def assistant_index() -> None:  # `assistant index` in a new process, as a user runs it
        subprocess.run(
            [str(Path(sys.executable).with_name("assistant")), "index"],
            check=True,
            capture_output=True,
            env=child_env(ASSISTANT_CORPUS=str(corpus_copy), ASSISTANT_INDEX=str(settings.index_dir)),
            cwd=ROOT,
        )

    cli_s, _ = _seconds(assistant_index)
    target = sorted(corpus_copy.glob("*.md"))[0]
    with target.open("a", encoding="utf-8") as fh:
        fh.write("\n\nA new paragraph about evaluation: measure both approaches on the same held-out set.\n")
    before = embedder.texts_embedded
    changed_s, _ = _seconds(bot.refresh)
    embedded = embedder.texts_embedded - before
    with target.open("a", encoding="utf-8") as fh:
        fh.write("\nAnd a second one, indexed by a new process: it embeds with the ONNX export, no torch.\n")
    changed_cli_s, _ = _seconds(assistant_index)
    return [
        Row(
            "indexing",
            "unchanged rebuild (in process)",
            unchanged_s,
            base_full_s,
            unit="s",
            target="<= 1 s, 0 embedded",
        ),
        Row(
            "indexing",
            "unchanged rebuild (`assistant index`, new process)",
            cli_s,
            base_full_s,
            unit="s",
            target="<= 1 s",
        ),
        Row("indexing", f"one file changed ({embedded} chunk embedded)", changed_s, base_full_s, unit="s"),
        Row("indexing", "one file changed (`assistant index`, new process)", changed_cli_s, base_full_s, unit="s"),
    ]
