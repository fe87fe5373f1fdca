"""Reading corpus files: front matter, verbatim wording, and files that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.chunking import sentence_spans
from assistant.corpus import load_corpus, parse_front_matter
from assistant.errors import CorpusError, CorpusFileError

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT.parent / "shared" / "source"


def test_real_corpus_has_front_matter_for_every_file() -> None:
    corpus = load_corpus(ROOT / "corpus")
    kinds = {doc.source: doc.kind for doc in corpus.documents}
    assert kinds == {
        "battle-of-prompt-engineering-vs-fine-tuning.md": "article",
        "faq.md": "faq",
        "prompt-engineering-vs-fine-tuning-for-llms.md": "article",
    }
    assert all(doc.title and doc.summary for doc in corpus.documents)
    assert corpus.problems == ()


@pytest.mark.skipif(not SOURCES.is_dir(), reason="shared/source is not beside this checkout")
def test_corpus_keeps_every_sentence_of_the_sources_verbatim() -> None:
    corpus_text = "\n".join(doc.text for doc in load_corpus(ROOT / "corpus").documents)
    flat = " ".join(corpus_text.split())
    cruft = ("Top comments (0)", "Spread the love", "Leave a Reply", "Faq’s", "Your email address")
    for source in sorted(SOURCES.glob("*.txt")):
        for line in source.read_text(encoding="utf-8").splitlines():
            line = " ".join(line.split())
            if not line or any(c in line for c in cruft):
                continue
            for start, end in sentence_spans(line):  # sentence by sentence: the duplicate FAQ entry was merged
                sentence = line[start:end]
                assert sentence in flat, f"{source.name}: {sentence[:60]!r} is missing or reworded"
    for c in cruft:
        assert c not in corpus_text


def test_faq_lists_the_duplicated_question_once_with_both_answers() -> None:
    faq = (ROOT / "corpus" / "faq.md").read_text(encoding="utf-8")
    assert faq.count("## Which approach should I prioritize: fine-tuning or prompt engineering?") == 1
    assert "Consider your requirements and desired outcomes to determine the best approach." in faq
    assert faq.count("The prioritization depends on your specific use case and goals.") == 1


def test_front_matter_is_split_from_the_body() -> None:
    meta, start = parse_front_matter("---\ntitle: T\nkind: faq\n---\n\nBody")
    assert meta == {"title": "T", "kind": "faq"}
    assert "---\ntitle: T\nkind: faq\n---\n\nBody"[start:].strip() == "Body"


def test_unreadable_files_are_reported_by_name_and_the_rest_still_load(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "good.md").write_text("# Good\n\nPrompts are instructions.\n", encoding="utf-8")
    (root / "empty.md").write_text("   \n", encoding="utf-8")
    (root / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (root / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "huge.txt").write_text("x" * 2000, encoding="utf-8")
    (root / "ignored.pdf").write_bytes(b"%PDF")
    (root / "loop").symlink_to(root)  # a symlink loop is never followed
    (root / "dangling.md").symlink_to(root / "gone.md")  # listed, but cannot be read

    corpus = load_corpus(root, max_file_bytes=1000)

    assert [d.source for d in corpus.documents] == ["good.md"]
    reasons = {p.path.name: p.reason for p in corpus.problems}
    assert "is empty" in reasons["empty.md"]
    assert "not valid UTF-8" in reasons["latin1.txt"]
    assert "binary" in reasons["binary.md"]
    assert "over the 1,000-byte limit" in reasons["huge.txt"]
    assert "cannot be read" in reasons["dangling.md"]


def test_missing_corpus_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="ASSISTANT_CORPUS"):
        load_corpus(tmp_path / "nope")


def test_add_file_accepts_markdown_and_refuses_bad_files_without_writing(tmp_path: Path) -> None:
    from assistant.corpus import add_file

    root = tmp_path / "corpus"
    doc = add_file(root, "notes.md", b"# Evaluation\n\nMeasure both approaches.\n", 1000)
    assert doc.source == "notes.md" and doc.title == "Evaluation"
    cases = {
        "slides.pdf": (b"%PDF-1.7 ...", "only .md, .markdown, .txt, .rst, .html, .htm files can be added"),
        "image.md": (
            b"\x89PNG\x00\x00",
            "looks like a binary file, not text; nothing was added, fix the file and upload it again",
        ),
        "latin1.txt": ("caf\xe9".encode("latin-1"), "is not valid UTF-8 (byte 3); re-save it as UTF-8"),
        "empty.txt": (b"  \n", "is empty; nothing was added"),
        "big.txt": (b"x" * 1001, "file is 1,001 bytes, over the 1,000-byte limit; nothing was added"),
        "notes.md": (b"again", "a file of that name is already in the corpus; rename it and try again"),
    }
    for name, (data, reason) in cases.items():
        with pytest.raises(CorpusFileError) as err:
            add_file(root, name, data, 1000)
        assert err.value.path == Path(name) and err.value.reason.startswith(reason)
    assert sorted(p.name for p in root.iterdir()) == ["notes.md"]  # nothing else written, no temp files left
    assert (root / "notes.md").read_text() == "# Evaluation\n\nMeasure both approaches.\n"
