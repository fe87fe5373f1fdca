"""The ONNX export of the embedding model: same vectors as torch, rebuilt when stale, used for answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from llama_index.core.schema import MetadataMode
from llama_index.core.vector_stores.utils import metadata_dict_to_node

from assistant import Assistant, Settings
from assistant.embeddings import Embedder
from assistant.errors import EmbeddingModelError
from assistant.onnx_encoder import OnnxEncoder, is_current

TEXTS = [
    "What is LoRA?",
    "  How long does fine-tuning take?  ",
    "Prompt engineering costs $5 to $10 — café naïve 日本語",
    "a",
    "Fine-tuning adapts a pre-trained model to a task. " * 80,  # far over the 256-token limit
]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """One export for the module, made from the real model."""
    folder = tmp_path_factory.mktemp("onnx") / "model-onnx"
    fresh = Embedder.from_defaults(Settings())  # nothing attached, so it really exports
    assert fresh.compile_to(folder)
    return folder


def test_the_export_gives_the_torch_models_vectors(export_dir: Path, embedder: Embedder) -> None:
    torch_vectors = np.asarray(embedder.model.get_text_embedding_batch(TEXTS), dtype=np.float32)
    onnx_vectors = OnnxEncoder(export_dir).encode(TEXTS, batch_size=2)  # batches pad differently

    assert onnx_vectors.shape == (len(TEXTS), 384)
    assert np.abs(onnx_vectors - torch_vectors).max() < 1e-5
    query = np.asarray(embedder.model.get_query_embedding(TEXTS[0]), dtype=np.float32)
    assert np.abs(OnnxEncoder(export_dir).encode(TEXTS[:1])[0] - query).max() < 1e-5


def test_exporting_prints_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # the first build exports before it embeds; transformers' loading bar must not reach the terminal
    assert Embedder.from_defaults(Settings()).compile_to(tmp_path / "model-onnx")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_a_current_export_is_not_redone_and_a_stale_or_partial_one_is(export_dir: Path, tmp_path: Path) -> None:
    fresh = Embedder.from_defaults(Settings())
    assert fresh.source_dir is not None
    assert not fresh.compile_to(export_dir)  # current: nothing to do

    stale = tmp_path / "stale"
    partial = tmp_path / "partial"
    for folder in (stale, partial):
        fresh.use_compiled(export_dir)
        assert fresh.compile_to(folder)  # copied from the export in use, not re-exported
        assert is_current(folder, fresh.source_dir)
    meta = json.loads((stale / "meta.json").read_text())
    (stale / "meta.json").write_text(json.dumps(meta | {"bytes": meta["bytes"] + 1}))  # other weights
    (partial / "model.onnx").unlink()  # a crash midway

    leftover = tmp_path / ".partial-crashed"  # what a process killed mid-export leaves behind
    leftover.mkdir()
    other = Embedder.from_defaults(Settings())
    for folder in (stale, partial):
        assert not is_current(folder, fresh.source_dir)
        assert not other.use_compiled(folder)
    assert other.compiled is None
    assert other.compile_to(partial) and other.use_compiled(partial)
    assert not leftover.exists()


def _in_new_process(code: str) -> dict:
    """Run ``code`` (which sets ``result``, a dict) in a new Python process with this test's
    environment; its ``result``, plus ``loaded``: which of torch and its kin it imported."""
    probe = (
        "import json, sys\n"
        "from assistant import Assistant\n"
        f"{code}"
        "result['loaded'] = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "print(json.dumps(result))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=dict(os.environ), check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_answers_come_from_the_export_without_importing_torch(
    corpus_dir: Path, settings: Settings, embedder: Embedder
) -> None:
    expected = Assistant.open(settings, embedder=embedder).ask("What is LoRA?")
    assert (settings.index_dir / "model-onnx" / "model.onnx").is_file()

    result = _in_new_process(
        "bot = Assistant.open()\n"
        "a = bot.ask('What is LoRA?')\n"
        "result = {'text': a.text, 'ids': [p.id for p in a.citations]}\n"
    )

    assert result["loaded"] == []
    assert result["ids"] == [p.id for p in expected.citations]
    assert result["text"] == expected.text


def test_a_rebuild_embeds_with_the_export_without_importing_torch(
    corpus_dir: Path, settings: Settings, embedder: Embedder
) -> None:
    Assistant.open(settings, embedder=embedder)  # the first build exports the model
    faq = corpus_dir / "faq.md"
    faq.write_text(
        faq.read_text(encoding="utf-8") + "\n## Can a llama tune a harpsichord?\n\nOnly a llama with perfect pitch.\n",
        encoding="utf-8",
    )
    result = _in_new_process(
        "bot = Assistant.open()  # finds faq.md changed and rebuilds\n"
        "p = bot.retrieve('Can a llama tune a harpsichord?', k=1)[0]\n"
        "result = {'embedded': bot.embedder.texts_embedded, 'top': p.text}\n"
    )

    assert result["loaded"] == []
    assert result["embedded"] >= 3  # the new passage, its sentences and the question
    assert "perfect pitch" in result["top"]
    # and the vectors it wrote are the torch model's
    bot = Assistant.open(settings, embedder=embedder)
    got = bot.store.collection(bot.indexer.current_manifest().collection).get(
        where={"source": "faq.md"}, include=["embeddings", "documents", "metadatas"]
    )
    new = [
        (vector, metadata_dict_to_node(dict(metadata), text=text).get_content(metadata_mode=MetadataMode.EMBED))
        for vector, text, metadata in zip(got["embeddings"], got["documents"], got["metadatas"], strict=True)
        if "perfect pitch" in text
    ]
    assert len(new) == 1
    torch_vector = np.asarray(embedder.model.get_text_embedding_batch([new[0][1]]), dtype=np.float32)
    assert np.abs(np.asarray(new[0][0]) - torch_vector[0]).max() < 1e-5


def _damage(path: Path, keep_mtime: bool) -> None:
    """2,000 random 4-byte runs over the weights, as the security review did (keeping the file date if asked)."""
    stat = path.stat()
    rng = np.random.default_rng(7)
    with open(path, "r+b") as fh:
        for offset in rng.integers(stat.st_size // 10, stat.st_size - 4, size=2000):
            fh.seek(int(offset))
            fh.write(rng.bytes(4))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_damaged_export_is_detected_by_size_checksum_or_probe_vector(export_dir: Path, tmp_path: Path) -> None:
    source = Embedder.from_defaults(Settings()).source_dir
    assert source is not None
    meta = json.loads((export_dir / "meta.json").read_text())
    assert meta["onnx_bytes"] == (export_dir / "model.onnx").stat().st_size and len(meta["onnx_sha256"]) == 64
    assert len(meta["probe"]) == 384
    copies = {}
    for name in ("truncated", "rewritten", "rotten"):
        copies[name] = tmp_path / name
        shutil.copytree(export_dir, copies[name])  # real copies: the module's export stays intact
    model = copies["truncated"] / "model.onnx"
    model.write_bytes(model.read_bytes()[:1_000_000])
    _damage(copies["rewritten"] / "model.onnx", keep_mtime=False)
    _damage(copies["rotten"] / "model.onnx", keep_mtime=True)  # silent corruption: same size, same date

    assert not is_current(copies["truncated"], source)  # size, checked on every open
    assert is_current(copies["rewritten"], source) and not is_current(copies["rewritten"], source, verify=True)
    assert is_current(copies["rotten"], source, verify=True)  # nothing on disk says so ...
    with pytest.raises(EmbeddingModelError, match="is damaged"):
        OnnxEncoder(copies["rotten"])  # ... but it no longer gives its probe vector back
    assert OnnxEncoder(export_dir).encode(["x"]).shape == (1, 384)


def test_an_assistant_exports_a_damaged_model_again_and_answers_with_finite_scores(
    mini_corpus: Path, settings: Settings, embedder: Embedder, export_dir: Path
) -> None:
    Assistant.open(settings, embedder=embedder)
    folder = settings.index_dir / "model-onnx"
    shutil.rmtree(folder)
    shutil.copytree(export_dir, folder)  # a private copy, never a hard link to the shared export
    _damage(folder / "model.onnx", keep_mtime=True)

    bot = Assistant.open(settings, embedder=Embedder.from_defaults(Settings()))  # a new process, in effect

    assert bot.embedder.compiled is not None and bot.embedder.compiled.folder == folder
    passages = bot.retrieve("What is LoRA?", k=3)
    assert all(np.isfinite(p.similarity) for p in passages) and passages[0].source == "lora.md"
    assert OnnxEncoder(folder).encode(["x"]).shape == (1, 384)  # the redone export checks out
