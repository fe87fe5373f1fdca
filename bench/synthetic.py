"""A deterministic synthetic corpus built from the real articles' sentences, for scale runs."""

from __future__ import annotations

import random
from pathlib import Path

from assistant.chunking import sentence_spans
from assistant.corpus import load_corpus

SECTIONS_PER_FILE = 100


def corpus_sentences(corpus_dir: Path) -> list[str]:
    """Every sentence of the real corpus (front matter and headings left out), in file order."""
    sentences: list[str] = []
    for doc in load_corpus(corpus_dir).documents:
        for start, end in sentence_spans(doc.text, doc.body_start):
            sentence = doc.text[start:end].strip(" -*\t")
            if not sentence.startswith("#") and 30 <= len(sentence) <= 400:
                sentences.append(sentence)
    return sentences


def write_corpus(target: Path, chunks: int, sentences: list[str], seed: int = 13) -> Path:
    """Write about ``chunks`` chunks of 2-3 real sentences each, one per Markdown section.

    Args:
        target: The folder to fill (created).
        chunks: How many sections, and so chunks, to write.
        sentences: The sentence pool (`corpus_sentences`).
        seed: The random seed; the same seed gives the same files.

    Returns:
        ``target``.
    """
    rng = random.Random(seed)
    target.mkdir(parents=True, exist_ok=True)
    for file_no in range(0, chunks, SECTIONS_PER_FILE):
        parts = [f"---\ntitle: Synthetic notes {file_no // SECTIONS_PER_FILE + 1}\nkind: article\n---\n"]
        for section in range(file_no, min(chunks, file_no + SECTIONS_PER_FILE)):
            words = rng.choice(sentences).split()[:4]
            parts.append(f"## {section + 1}. {' '.join(words).strip('.,:;')}\n\n")
            parts.append(" ".join(rng.sample(sentences, rng.randint(2, 3))) + "\n\n")
        (target / f"notes-{file_no // SECTIONS_PER_FILE + 1:05d}.md").write_text("".join(parts), encoding="utf-8")
    return target
