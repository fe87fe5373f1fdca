"""The chat page, through Streamlit's own AppTest harness, on a real index in tmp_path."""

from __future__ import annotations

import json
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


def _button(at: AppTest, label: str):  # noqa: ANN202 - AppTest's Button
    return next(b for b in at.button if b.label == label)


def test_a_question_gets_a_cited_answer_and_a_follow_up_keeps_context(at: AppTest) -> None:
    assert any(b.label == "How long does fine-tuning take?" for b in at.button)

    at.chat_input(key="chat-input").set_value("What is fine-tuning?").run()
    assert not at.exception
    assert len(at.chat_message) == 2
    answer = at.chat_message[1]
    assert "[1]" in answer.markdown[0].value
    assert at.expander and at.expander[0].label.startswith("[1] ")
    assert "<mark>" in at.expander[0].markdown[0].value  # the quoted sentence is highlighted
    assert not any(b.label == "How long does fine-tuning take?" for b in at.button)  # starters gone

    at.chat_input(key="chat-input").set_value("How long does it take to implement?").run()
    assert "weeks or months" in at.chat_message[3].markdown[0].value
    assert any(c.value.startswith("Searching for:") and "fine-tuning" in c.value for c in at.caption)


def test_a_starter_button_asks_its_question(at: AppTest) -> None:
    _button(at, "What is LoRA?").click().run()
    assert at.chat_message[0].markdown[0].value == "What is LoRA?"
    assert "LoRA" in at.chat_message[1].markdown[0].value and at.expander


def test_off_topic_question_shows_examples_not_sources_and_clear_chat_empties(at: AppTest) -> None:
    at.chat_input(key="chat-input").set_value("What is the capital of France?").run()
    assert "do not cover this question" in at.chat_message[1].markdown[0].value
    assert not at.expander
    assert not at.feedback  # nothing to rate

    _button(at, "How long does fine-tuning take?").click().run()  # an example it can answer
    assert at.chat_message[2].markdown[0].value == "How long does fine-tuning take?"
    assert at.expander

    _button(at, "Clear chat").click().run()
    assert len(at.chat_message) == 0


def test_feedback_is_appended_to_the_log(at: AppTest, settings: Settings) -> None:
    at.chat_input(key="chat-input").set_value("What is LoRA?").run()
    at.feedback[0].set_value(0).run()
    records = [json.loads(line) for line in settings.feedback_path.read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["rating"] == "down" and records[0]["question"] == "What is LoRA?"
    assert records[0]["sources"] and records[0]["answer"].startswith(at.chat_message[1].markdown[0].value[:40])


def test_guided_dialog_reaches_a_recommendation_and_starts_over(at: AppTest) -> None:
    at.radio(key="mode").set_value("Guided").run()
    assert any("What are you building" in m.value or "Describe" in m.value for m in at.markdown) or at.chat_input
    at.chat_input(key="guide-input").set_value(
        "We have 50k labelled support tickets and an ML team, and we need consistent output at high volume."
    ).run()
    for _ in range(8):  # answer with the first quick reply until it decides
        if any(m.value.startswith("### ") and "Recommendation" in m.value for m in at.markdown):
            break
        progress = [p for p in at.get("progress")]
        assert progress, "each question shows its progress"
        options = [b for b in at.button if b.key and b.key.startswith("option-")]
        assert options, "each question offers quick replies"
        options[0].click().run()
        assert not at.exception
    card = next(m.value for m in at.markdown if m.value.startswith("### ") and "Recommendation" in m.value)
    assert any(label in card for label in ("Fine-tuning", "Prompt engineering", "Hybrid"))
    assert any(m.value == "**Why**" for m in at.markdown) and at.expander  # reasons with their citations

    _button(at, "Start over").click().run()
    assert not any("Recommendation" in m.value for m in at.markdown)


def test_rebuild_button_reports_the_added_file(at: AppTest, settings: Settings) -> None:
    (settings.corpus_dir / "evaluation.md").write_text("# Evaluation\n\nMeasure both approaches on held-out data.\n")
    _button(at, "Rebuild index").click().run()
    assert any("1 added" in s.value for s in at.success)
    assert at.get("metric")[0].value == "4"  # documents


def test_upload_refuses_bad_files_and_adds_good_ones(at: AppTest, settings: Settings) -> None:
    before = sorted(p.name for p in settings.corpus_dir.iterdir())
    at.file_uploader(key="upload").set_value(("broken.md", b"\x89PNG\x00\x00binary", "text/markdown")).run()
    assert any("Not added" in e.value and "binary" in e.value for e in at.error)
    at.file_uploader(key="upload").set_value(("latin.txt", "caf\xe9".encode("latin-1"), "text/plain")).run()
    assert any("not valid UTF-8" in e.value for e in at.error)
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == before

    at.file_uploader(key="upload").set_value(("eval.md", b"# Eval\n\nMeasure both.\n", "text/markdown")).run()
    assert any("Added eval.md" in s.value for s in at.success)
    assert (settings.corpus_dir / "eval.md").read_bytes() == b"# Eval\n\nMeasure both.\n"
    _button(at, "Rebuild now").click().run()  # offered after the upload
    assert any("1 added" in s.value for s in at.success)
