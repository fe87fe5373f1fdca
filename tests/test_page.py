"""The chat page, through Streamlit's own AppTest harness, on a real index in tmp_path."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from assistant import Assistant, Settings

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


@pytest.fixture
def at(bot: Assistant) -> AppTest:
    """The page, run once, over the `bot` fixture's corpus and index."""
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert not app.exception
    return app


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _ask(at: AppTest, question: str) -> AppTest:
    at.chat_input(key="chat-input").set_value(question).run()
    assert not at.exception
    return at


def _corpus_files(settings: Settings) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in settings.corpus_dir.iterdir()}


def test_a_question_gets_a_cited_answer_and_a_follow_up_keeps_context(at: AppTest) -> None:
    assert any(b.label == "How long does fine-tuning take?" for b in at.button)  # starter questions

    _ask(at, "What is fine-tuning?")
    assert len(at.chat_message) == 2
    answer = at.chat_message[1]
    assert "[1]" in answer.markdown[0].value
    assert answer.expander and answer.expander[0].label.startswith("[1] ")
    passage = answer.expander[0].markdown[0].value
    assert "<mark " in passage  # the quoted sentence is highlighted ...
    marked = passage.split("<mark ", 1)[1].split(">", 1)[1].split("</mark>", 1)[0]
    assert marked in answer.markdown[0].value  # ... and it is a sentence of the answer
    assert not any(b.label == "How long does fine-tuning take?" for b in at.button)  # starters gone
    assert not any(c.value.startswith(":material/search: Searching for:") for c in at.caption)  # not rewritten

    _ask(at, "How long does it take to implement?")
    assert "weeks or months" in at.chat_message[3].markdown[0].value
    searching = [c.value for c in at.chat_message[3].caption if "Searching for:" in c.value]
    assert searching and "fine-tuning" in searching[0]


def test_a_starter_button_asks_its_question(at: AppTest) -> None:
    _button(at, "What is LoRA?").click().run()
    assert at.chat_message[0].markdown[0].value == "What is LoRA?"
    assert "LoRA" in at.chat_message[1].markdown[0].value and at.chat_message[1].expander


def test_off_topic_question_shows_examples_not_sources_and_clear_chat_empties(at: AppTest) -> None:
    _ask(at, "What is the capital of France?")
    refusal = at.chat_message[1]
    assert "do not cover this question" in refusal.info[0].value
    assert not refusal.expander and not at.feedback  # no sources, nothing to rate
    examples = [b for b in refusal.button if b.key and b.key.startswith("example-")]
    assert len(examples) >= 2

    _button(at, "How long does fine-tuning take?").click().run()  # an example it can answer
    assert at.chat_message[2].markdown[0].value == "How long does fine-tuning take?"
    assert at.chat_message[3].expander and not at.chat_message[3].info

    _button(at, "Clear chat").click().run()
    assert len(at.chat_message) == 0
    assert any(b.label == "What is LoRA?" for b in at.button)  # the empty chat offers starters again


def test_a_question_that_is_too_long_gets_a_warning_and_is_not_used_as_context(at: AppTest) -> None:
    _ask(at, "What is fine-tuning?")
    _ask(at, "What is LoRA? " * 215)  # 3,010 characters
    assert any("limit is 2,000" in w.value for w in at.chat_message[3].warning)
    assert not at.error

    _ask(at, "How long does it take to implement?")  # "it" is fine-tuning, not the refused question's LoRA
    assert "weeks or months" in at.chat_message[5].markdown[0].value
    searching = [c.value for c in at.chat_message[5].caption if "Searching for:" in c.value]
    assert searching and "fine-tuning" in searching[0] and "LoRA" not in searching[0]


def test_feedback_is_appended_once_per_rating(at: AppTest, settings: Settings) -> None:
    _ask(at, "What is LoRA?")
    at.feedback[0].set_value(0).run()
    _ask(at, "What is fine-tuning?")  # later runs of the page do not log the rating again
    records = [json.loads(line) for line in settings.feedback_path.read_text().splitlines()]
    assert len(records) == 1
    record = records[0]
    assert record["rating"] == "down" and record["question"] == "What is LoRA?"
    assert record["answer"].startswith(at.chat_message[1].markdown[0].value[:40])
    assert record["sources"] and set(record["sources"][0]) == {"source", "title", "section", "start", "end"}
    assert datetime.fromisoformat(record["timestamp"]).tzinfo is not None

    at.feedback[0].set_value(1).run()  # a changed rating is a new line
    at.feedback[0].set_value(None).run()  # a withdrawn one is not
    records = [json.loads(line) for line in settings.feedback_path.read_text().splitlines()]
    assert [r["rating"] for r in records] == ["down", "up"]


def test_guided_dialog_with_typed_and_quick_replies_reaches_a_recommendation(at: AppTest) -> None:
    at.radio(key="mode").set_value("Guided").run()
    assert any("Describe your situation" in m.value for m in at.markdown)
    at.chat_input(key="guide-input").set_value("We are building a support ticket classifier.").run()
    assert at.get("progress")[0].proto.text == "Question 1 of up to 7"

    at.chat_input(key="guide-input").set_value("about 20k labelled tickets").run()  # typed, not a button
    assert at.get("progress")[0].proto.text == "Question 2 of up to 7"
    assert any("about 20,000 labelled examples" in c.value for c in at.caption)
    assert any(m.value == "about 20k labelled tickets" for m in at.chat_message[-2].markdown)  # the transcript

    for _ in range(7):  # then the first quick reply until it decides
        if any(b.label == "Start over" for b in at.button):
            break
        options = [b for b in at.button if b.key and b.key.startswith("option-")]
        assert options, "each question offers quick replies"
        options[0].click().run()
        assert not at.exception
    assert any(c.value == "Recommendation" for c in at.caption)
    heading = next(m.value for m in at.markdown if m.value.startswith("### "))
    assert any(label in heading for label in ("Fine-tuning", "Prompt engineering", "Hybrid"))
    assert at.get("progress")[0].proto.text.startswith("Confidence ")
    why = [m.value for m in at.markdown if m.value.startswith("- ") and "[1]" in m.value]
    assert why and at.expander[0].label.startswith("[1] ")  # reasons with their cited sources
    assert any(m.value == "**Next steps**" for m in at.markdown)

    _button(at, "Start over").click().run()
    assert not any(c.value == "Recommendation" for c in at.caption)
    assert any("Describe your situation" in m.value for m in at.markdown)


def test_rebuild_button_reports_the_added_file(at: AppTest, settings: Settings) -> None:
    (settings.corpus_dir / "evaluation.md").write_text("# Evaluation\n\nMeasure both approaches on held-out data.\n")
    _button(at, "Rebuild index").click().run()
    assert any("1 added" in s.value for s in at.success)
    assert at.get("metric")[0].value == "4"  # documents


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.pdf", b"%PDF-1.4 some text", "only .md"),
        ("broken.md", b"\x89PNG\r\n\x1a\n\x00\x00binary", "binary"),
        ("latin.txt", "caf\xe9 au lait".encode("latin-1"), "not valid UTF-8"),
        ("empty.md", b"  \n\n", "is empty"),
        ("faq.md", b"# FAQ\n\nReplaced?\n", "already in the corpus"),
    ],
)
def test_upload_refuses_a_bad_file_and_writes_nothing(
    at: AppTest, settings: Settings, name: str, data: bytes, reason: str
) -> None:
    before = _corpus_files(settings)
    at.file_uploader(key="upload").set_value((name, data, "application/octet-stream")).run()
    assert any(e.value.startswith(f"Not added: {name}") and reason in e.value for e in at.error)
    assert not any(b.label == "Rebuild now" for b in at.button)
    assert _corpus_files(settings) == before


def test_upload_refuses_an_oversize_file(bot: Assistant, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_MAX_FILE_BYTES", "10000")  # over the corpus files; a new engine for it
    at = AppTest.from_file(APP, default_timeout=120).run()
    before = _corpus_files(settings)
    at.file_uploader(key="upload").set_value(("long.md", b"# Long\n\n" + b"word " * 2400, "text/markdown")).run()
    assert any("over the 10,000-byte limit" in e.value for e in at.error)
    assert _corpus_files(settings) == before


def test_upload_adds_a_good_file_and_offers_the_rebuild(at: AppTest, settings: Settings) -> None:
    at.file_uploader(key="upload").set_value(("eval.md", b"# Eval\n\nMeasure both.\n", "text/markdown")).run()
    assert any("Added eval.md" in s.value for s in at.success)
    assert (settings.corpus_dir / "eval.md").read_bytes() == b"# Eval\n\nMeasure both.\n"
    _button(at, "Rebuild now").click().run()
    assert any("1 added" in s.value for s in at.success)
    assert at.get("metric")[0].value == "4"


def test_a_page_that_cannot_start_says_why(tmp_path: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()  # no corpus folder in tmp_path
    assert not at.exception
    assert at.error and at.error[0].value.startswith("The assistant could not start.")
    assert "ASSISTANT_CORPUS" in at.error[0].value
