"""The chat page, through Streamlit's own AppTest harness, on a real index in tmp_path.

Nothing here depends on the exact wording of an answer: the engine's answers are checked for
their structure (markers, sources, the rewritten query), not their sentences.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from assistant import Assistant, Settings
from assistant.embeddings import Embedder

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
GUIDE = "Get a recommendation"


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


def _guided(at: AppTest) -> AppTest:
    at.segmented_control(key="mode").set_value(GUIDE).run()
    assert not at.exception
    return at


def _reply(at: AppTest, text: str) -> AppTest:
    at.chat_input(key="guide-input").set_value(text).run()
    assert not at.exception
    return at


def _until(at: AppTest, done, timeout: float = 600) -> AppTest:
    """Rerun the page until ``done(at)``: background work (a rebuild) finishes between runs."""
    deadline = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)
        at.run()
        assert not at.exception
    return at


def _corpus_files(settings: Settings) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in settings.corpus_dir.iterdir()}


def _searching(message) -> list[str]:
    return [c.value for c in message.caption if "Searching for:" in c.value]


def test_a_question_gets_a_cited_answer_and_a_follow_up_keeps_context(at: AppTest) -> None:
    assert any(b.label == "How long does fine-tuning take?" for b in at.button)  # starter questions
    assert at.segmented_control(key="mode").value == "Ask"  # the modes sit on the main page

    _ask(at, "What is fine-tuning?")
    assert len(at.chat_message) == 2
    answer = at.chat_message[1]
    text = answer.markdown[0].value
    assert re.search(r'<a class="cite" href="#src-\d+-1" data-n="1">\[1\]</a>', text)  # [1] opens source 1
    assert answer.expander and answer.expander[0].label.startswith("[1] ")
    passage = answer.expander[0].markdown[0].value
    assert "<mark " in passage  # the quoted sentence is highlighted ...
    marked = passage.split("<mark ", 1)[1].split(">", 1)[1].split("</mark>", 1)[0]
    assert marked[:40] in text  # ... and it is a sentence of the answer
    assert any('class="copy-answer"' in m.value for m in answer.markdown)  # a copy button
    assert not any(b.label == "How long does fine-tuning take?" for b in at.button)  # starters gone
    assert not _searching(answer)  # not rewritten

    _ask(at, "How long does it take to implement?")
    searching = _searching(at.chat_message[3])
    assert searching and "fine-tuning" in searching[0].lower()


def test_a_starter_button_asks_its_question(at: AppTest) -> None:
    _button(at, "What is LoRA?").click().run()
    assert at.chat_message[0].markdown[0].value == "What is LoRA?"
    assert "LoRA" in at.chat_message[1].markdown[0].value and at.chat_message[1].expander


def test_off_topic_question_shows_no_sources_and_clear_chat_empties(at: AppTest) -> None:
    _ask(at, "What is the capital of France?")
    refusal = at.chat_message[1]
    assert refusal.info and not refusal.expander and not at.feedback  # no sources, nothing to rate
    examples = [b for b in refusal.button if b.key and b.key.startswith("example-")]
    if examples:  # example questions the documents answer, when the engine offers some
        examples[0].click().run()
        assert at.chat_message[2].markdown[0].value == examples[0].label

    _button(at, "Clear chat").click().run()
    assert len(at.chat_message) == 0
    assert any(b.label == "What is LoRA?" for b in at.button)  # the empty chat offers starters again


def test_an_unsure_reply_quotes_the_closest_passage_with_its_source(at: AppTest) -> None:
    _ask(at, "Do I need GPUs to fine-tune?")  # above the corpus's background level, below the bar
    reply = at.chat_message[1]

    assert reply.info and reply.info[0].value.startswith("I'm not sure")
    quote = next(m.value for m in reply.markdown if 'class="cite"' in m.value)
    assert re.search(r'<a class="cite" href="#src-\d+-1" data-n="1">\[1\]</a>', quote)
    assert len(reply.expander) == 1 and reply.expander[0].label.startswith("[1] ")
    assert not at.feedback  # not an answer, so nothing to rate


def test_a_blank_question_gets_no_bubble_and_a_long_one_a_short_bubble(at: AppTest) -> None:
    _ask(at, "   ")
    assert len(at.chat_message) == 0
    assert any("empty" in w.value for w in at.warning)

    _ask(at, "What is fine-tuning?")
    _ask(at, "What is LoRA? " * 215)  # 3,010 characters
    bubble = at.chat_message[2].markdown[0].value
    assert len(bubble) < 260 and "(3,010 characters)" in bubble
    assert any("limit is 2,000" in w.value for w in at.chat_message[3].warning)
    assert not at.error

    _ask(at, "How long does it take to implement?")  # "it" is fine-tuning, not the refused question's LoRA
    searching = _searching(at.chat_message[5])
    assert searching and "fine-tuning" in searching[0].lower() and "LoRA" not in searching[0]


def test_feedback_is_appended_once_per_rating_and_confirmed(at: AppTest, settings: Settings) -> None:
    _ask(at, "What is LoRA?")
    at.feedback[0].set_value(0).run()
    assert any("recorded" in t.value for t in at.toast)
    _ask(at, "What is fine-tuning?")  # later runs of the page do not log the rating again
    records = [json.loads(line) for line in settings.feedback_path.read_text().splitlines()]
    assert len(records) == 1
    record = records[0]
    assert record["rating"] == "down" and record["question"] == "What is LoRA?"
    assert record["sources"] and set(record["sources"][0]) == {"source", "title", "section", "start", "end"}
    assert datetime.fromisoformat(record["timestamp"]).tzinfo is not None

    at.feedback[0].set_value(1).run()  # a changed rating is a new line
    at.feedback[0].set_value(None).run()  # a withdrawn one is not
    records = [json.loads(line) for line in settings.feedback_path.read_text().splitlines()]
    assert [r["rating"] for r in records] == ["down", "up"]


def test_the_conversation_survives_a_reload_through_the_url(at: AppTest, settings: Settings) -> None:
    sid = at.query_params["c"][0] if isinstance(at.query_params["c"], list) else at.query_params["c"]
    assert re.fullmatch(r"[0-9a-f]{32}", sid)
    _ask(at, "What is LoRA?")
    saved = json.loads((settings.feedback_path.parent / "conversations" / f"{sid}.json").read_text())
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant"]

    reloaded = AppTest.from_file(APP, default_timeout=120)
    reloaded.query_params["c"] = sid
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.chat_message[0].markdown[0].value == "What is LoRA?"
    assert reloaded.chat_message[1].expander  # with its sources

    fresh = AppTest.from_file(APP, default_timeout=120).run()  # no id in the URL: a new conversation
    assert len(fresh.chat_message) == 0


def test_which_should_i_use_offers_the_guided_dialog(at: AppTest) -> None:
    _ask(at, "Which should I use, prompt engineering or fine-tuning?")
    offer = [b for b in at.button if b.key and b.key.startswith("offer-guide-")]
    assert offer and offer[0].label == GUIDE
    offer[0].click().run()
    assert at.segmented_control(key="mode").value == GUIDE
    assert any("Describe your situation" in m.value for m in at.markdown)


def test_guided_dialog_with_typed_and_quick_replies_reaches_a_recommendation(at: AppTest) -> None:
    _guided(at)
    assert any("Describe your situation" in m.value for m in at.markdown)
    _reply(at, "We are building a support ticket classifier.")
    assert at.get("progress")[0].proto.text == "Question 1 of up to 7"

    _reply(at, "about 20k labelled tickets")  # typed, not a button
    assert at.get("progress")[0].proto.text == "Question 2 of up to 7"
    assert any("about 20,000 labelled examples" in c.value and "you said:" in c.value for c in at.caption)
    transcript = [m.markdown[0].value for m in at.chat_message]
    assert "about 20k labelled tickets" in transcript
    assert any(t.startswith("I could not pick out any facts") for t in transcript)  # the first turn stays

    for _ in range(8):  # then the first quick reply until it decides
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
    assert why and "you said: “" in why[0] and at.expander[0].label.startswith("[1] ")
    assert any(m.value == "**Next steps**" for m in at.markdown)

    follow_up = [b for b in at.button if b.key and b.key.startswith("follow-up-")]
    assert follow_up  # ask the documents about the recommendation
    question = follow_up[0].label
    follow_up[0].click().run()
    assert at.segmented_control(key="mode").value == "Ask"
    assert at.chat_message[0].markdown[0].value == question

    _guided(at)
    _button(at, "Start over").click().run()
    assert not any(c.value == "Recommendation" for c in at.caption)
    assert any("Describe your situation" in m.value for m in at.markdown)


def test_the_correction_prompt_has_no_yes_no_buttons_and_is_not_counted(at: AppTest) -> None:
    _guided(at)
    _reply(at, "We have no training data at all and we need to demo next week.")
    assert at.get("progress")[0].proto.text == "Question 1 of up to 7"
    assert {b.label for b in at.button if b.key and b.key.startswith("option-")} == {
        "Yes, that's right", "No, let me correct something",
    }  # fmt: skip
    _button(at, "No, let me correct something").click().run()
    assert any("What should I correct?" in m.value for m in at.markdown)
    assert not [b for b in at.button if b.key and b.key.startswith("option-")]
    assert at.get("progress")[0].proto.text == "Question 1 of up to 7"


def test_a_stale_quick_reply_is_recorded_once(at: AppTest) -> None:
    _guided(at)
    _reply(at, "We want an LLM to help our support team.")
    option = next(b for b in at.button if b.key and b.key.startswith("option-"))
    option.click().run()
    turns = len(at.session_state["guide"].history)
    at.session_state["guide"].reply(option.label, turn=at.session_state["guide"].turn - 1)  # the same click again
    at.run()
    assert len(at.session_state["guide"].history) == turns


def test_rebuild_runs_in_the_background_and_survives_a_question(at: AppTest, settings: Settings) -> None:
    (settings.corpus_dir / "evaluation.md").write_text("# Evaluation\n\nMeasure both approaches on held-out data.\n")
    _button(at, "Rebuild index").click().run()
    _ask(at, "What is LoRA?")  # asked while the rebuild runs
    assert at.chat_message[1].expander
    _until(at, lambda a: any("1 added" in s.value for s in a.success))
    assert at.get("metric")[0].value == "4"  # documents


def test_the_rebuild_outcome_stays_until_the_next_rebuild(at: AppTest, settings: Settings) -> None:
    (settings.corpus_dir / "evaluation.md").write_text("# Evaluation\n\nMeasure both approaches on held-out data.\n")
    _button(at, "Rebuild index").click().run()
    _until(at, lambda a: any("1 added" in s.value for s in a.success))

    _ask(at, "What is LoRA?")  # reruns after the one that first showed it (the browser test once lost it so)
    at.run()

    assert any("1 added" in s.value for s in at.success)
    _button(at, "Rebuild index").click().run()
    assert not any("1 added" in s.value for s in at.success)  # a new rebuild: the old outcome is gone


def test_a_session_that_reconnects_after_the_rebuild_still_sees_its_outcome(at: AppTest, settings: Settings) -> None:
    (settings.corpus_dir / "evaluation.md").write_text("# Evaluation\n\nMeasure both approaches on held-out data.\n")
    _button(at, "Rebuild index").click().run()
    _until(at, lambda a: not any(b.label == "Rebuild index" and b.disabled for b in a.button))  # it has ended

    # A browser whose websocket dropped on a loaded machine comes back as a new session, with none
    # of the old one's state (the end-to-end test once lost the outcome so).
    fresh = AppTest.from_file(APP, default_timeout=120).run()
    assert not fresh.exception
    assert any("1 added" in s.value for s in fresh.success)


def test_the_page_switches_to_a_newer_index_built_elsewhere(
    at: AppTest, settings: Settings, embedder: Embedder
) -> None:
    assert at.get("metric")[0].value == "3"
    (settings.corpus_dir / "evaluation.md").write_text("# Evaluation\n\nMeasure both approaches on held-out data.\n")
    Assistant.open(settings, embedder=embedder)  # another process's `assistant index`, in effect
    at.run()
    assert any("The index was updated" in i.value for i in at.info)
    assert at.get("metric")[0].value == "4"


def test_a_document_is_removed_after_confirmation(at: AppTest, settings: Settings) -> None:
    (settings.corpus_dir / "evaluation.md").write_text("# Evaluation\n\nMeasure both approaches on held-out data.\n")
    _button(at, "Rebuild index").click().run()
    _until(at, lambda a: any("1 added" in s.value for s in a.success))  # the rebuild has ended
    assert at.get("metric")[0].value == "4"

    at.selectbox(key="remove-choice").set_value("evaluation.md").run()
    _button(at, "Remove…").click().run()
    assert (settings.corpus_dir / "evaluation.md").exists()  # not before the confirmation
    assert any("Remove **evaluation.md**" in w.value for w in at.warning)
    _button(at, "Yes, remove it").click().run()
    assert not (settings.corpus_dir / "evaluation.md").exists()
    _until(at, lambda a: a.get("metric")[0].value == "3")


def test_corpus_text_is_rendered_without_images_or_html(at: AppTest, settings: Settings) -> None:
    (settings.corpus_dir / "tracking.md").write_text(
        "# Tracking pixels\n\nA tracking pixel is a tiny remote image. "
        "![pixel](http://127.0.0.1:9/exfil.png) <img src='http://127.0.0.1:9/x.png'> <b>bold</b> "
        "Tracking pixels report when a page is opened.\n"
    )
    _button(at, "Rebuild index").click().run()
    _until(at, lambda a: any("1 added" in s.value for s in a.success))
    _ask(at, "What is a tracking pixel?")
    # what is rendered (the copy button holds the raw text only in an escaped attribute, for the clipboard)
    rendered = [m.value for m in at.markdown if 'class="copy-answer"' not in m.value]
    shown = " ".join(rendered) + " ".join(e.label for e in at.expander)
    assert "Tracking pixel" in shown or "tracking pixel" in shown
    assert "](http" not in shown and "<img" not in shown and "<b>" not in shown
    assert "&lt;img" in shown  # the raw HTML is shown as text, escaped


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


def test_upload_adds_a_good_file_and_offers_the_rebuild(at: AppTest, settings: Settings) -> None:
    at.file_uploader(key="upload").set_value(("eval.md", b"# Eval\n\nMeasure both.\n", "text/markdown")).run()
    assert any("Added eval.md" in s.value for s in at.success)
    assert (settings.corpus_dir / "eval.md").read_bytes() == b"# Eval\n\nMeasure both.\n"
    _button(at, "Rebuild now").click().run()
    _until(at, lambda a: any("1 added" in s.value for s in a.success))
    assert at.get("metric")[0].value == "4"


def test_a_page_that_cannot_start_says_why(tmp_path: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()  # no corpus folder in tmp_path
    assert not at.exception
    assert at.error and at.error[0].value.startswith("The assistant could not start.")
    assert "ASSISTANT_CORPUS" in at.error[0].value
