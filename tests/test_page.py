"""The chat page, through Streamlit's own AppTest harness."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from assistant import Assistant

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def test_a_question_gets_a_cited_answer_and_a_follow_up_keeps_context(bot: Assistant) -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert any("How long does fine-tuning take?" in b.label for b in at.button)

    at.chat_input[0].set_value("What is fine-tuning?").run()
    assert not at.exception
    assert len(at.chat_message) == 2
    assert at.expander and at.expander[0].label.startswith("[1] ")

    at.chat_input[0].set_value("How long does it take to implement?").run()
    assert "weeks or months" in at.chat_message[3].markdown[0].value
    assert any("Searching for:" in c.value for c in at.caption)


def test_off_topic_question_has_no_sources_and_clear_chat_empties(bot: Assistant) -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.chat_input[0].set_value("What is the capital of France?").run()
    assert "do not cover this question" in at.chat_message[1].markdown[0].value
    assert not at.expander

    next(b for b in at.button if b.label == "Clear chat").click().run()
    assert len(at.chat_message) == 0
