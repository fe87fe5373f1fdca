"""The embedder: batches sorted by length internally, results in the caller's order."""

from __future__ import annotations

import numpy as np

from assistant.embeddings import Embedder


def test_documents_come_back_in_input_order_across_batches(embedder: Embedder) -> None:
    texts = ["LoRA.", "Prompt engineering shapes the input " * 8, "Fine-tuning updates weights.", "Hybrid " * 30, "x"]
    saved = embedder.batch_size
    embedder.batch_size = 2  # three batches, each mixing the original positions
    try:
        calls = embedder.calls
        vectors = embedder.embed_documents(texts)
        assert embedder.calls - calls == 3
    finally:
        embedder.batch_size = saved
    one_by_one = [embedder.embed_documents([t])[0] for t in texts]
    for got, want in zip(vectors, one_by_one):
        assert np.allclose(got, want, atol=1e-5)


def test_progress_counts_every_text(embedder: Embedder) -> None:
    seen: list[int] = []
    embedder.embed_documents(["a", "bb", "ccc"], progress=seen.append)
    assert sum(seen) == 3


def test_the_model_reads_a_word_of_its_vocabulary_whole_and_others_in_pieces(embedder: Embedder) -> None:
    assert embedder.reads_whole("ML") and embedder.reads_whole("api")
    assert not embedder.reads_whole("PTO")  # "pt" + "##o": the model has no meaning of its own for it
    assert not Embedder("custom", lambda: None).reads_whole("ml")  # type: ignore[arg-type,return-value]  # no tokenizer known
