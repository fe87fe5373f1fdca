"""The answer engine without an LLM: extractive answers, citations, refusals, streaming, bad input."""

from __future__ import annotations

import json
import re

import pytest

from assistant import Assistant, InvalidQuestionError
from assistant.answer import Answer

MARKER = re.compile(r"\[(\d+)\]")


def quoted_sentences(answer: Answer) -> list[str]:
    """The quoted pieces of an extractive answer: its text without leads, markers and list bullets."""
    pieces = []
    for line in answer.text.splitlines():
        line = re.sub(r"^According to \*[^*]+\*:\s*", "", line.strip())
        line = re.sub(r"^- ", "", line)
        pieces += [p.strip() for p in MARKER.split(line)[::2] if p.strip()]
    return pieces


def test_extractive_answer_quotes_cited_passages_verbatim(bot: Assistant) -> None:
    answer = bot.ask("How long does fine-tuning take?")

    assert answer.answerable and answer.backend == "extractive" and answer.note is None
    assert answer.query == "How long does fine-tuning take?"
    assert "weeks or months" in answer.text
    markers = [int(n) for n in MARKER.findall(answer.text)]
    assert sorted(set(markers)) == list(range(1, len(answer.citations) + 1))
    assert markers[0] == 1  # numbered in order of first use
    cited_text = " ".join(p.text for p in answer.citations)
    for piece in quoted_sentences(answer):
        assert piece in cited_text, piece
    for passage in answer.citations:
        source = (bot.settings.corpus_dir / passage.source).read_text(encoding="utf-8")
        assert source[passage.start : passage.end] == passage.text


def test_each_sentence_carries_the_marker_of_its_own_passage(bot: Assistant) -> None:
    answer = bot.ask("what are the limitations of prompt engineering?")

    for sentence, n in re.findall(r"([^\]\n]+?) \[(\d+)\]", answer.text):
        sentence = re.sub(r"^(?:According to \*[^*]+\*:\s*|- )", "", sentence.strip())
        assert sentence in answer.citations[int(n) - 1].text


def test_answer_is_short_and_has_no_near_duplicates(bot: Assistant) -> None:
    answer = bot.ask("Can I use fine-tuning and prompt engineering together?")

    pieces = quoted_sentences(answer)
    assert 2 <= len(MARKER.findall(answer.text)) <= bot.answers.composer.max_units + 1  # +1: an antecedent
    assert len(pieces) == len(set(pieces))


def test_to_dict_is_json_ready(bot: Assistant) -> None:
    data = json.loads(json.dumps(bot.ask("What is LoRA?").to_dict()))

    assert set(data) == {"text", "citations", "answerable", "query", "note", "backend", "truncated"}
    assert data["citations"][0]["source"].endswith(".md")


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "Write a poem about autumn",
        "How do I train a dog?",
        "What is a convolutional neural network?",
    ],
)
def test_off_topic_questions_are_refused_politely(bot: Assistant, question: str) -> None:
    answer = bot.ask(question)

    assert not answer.answerable
    # Near the corpus's words ("train"), the reply says it is unsure and quotes the closest passage.
    assert answer.citations == () or (answer.text.startswith("I'm not sure") and len(answer.citations) == 1)
    profile = bot.retriever.profile
    assert all(title in answer.text for title in profile.titles)  # says what the corpus covers
    assert answer.text.count("\n- ") >= 2  # example questions
    assert profile.examples()[0] in answer.text


@pytest.mark.parametrize(
    "question", ["is lora worth it?", "so how fast can i ship prompt tweaks", "fine tuning needs lots of data right?"]
)
def test_casual_in_scope_questions_are_answered(bot: Assistant, question: str) -> None:
    answer = bot.ask(question)

    assert answer.answerable and answer.citations


@pytest.mark.parametrize("question", ["Can I do both?", "Should I combine them?", "Which should I try first?"])
def test_a_first_question_that_names_nothing_is_asked_of_the_corpus_subject(bot: Assistant, question: str) -> None:
    answer = bot.ask(question)

    assert answer.answerable and answer.citations
    assert answer.query == question  # answered as asked, from its own passages and the titles' search
    if "both" in question or "combine" in question:
        assert "not mutually exclusive" in answer.text or "combined" in answer.text


@pytest.mark.parametrize(
    "question", ["What is RAG and how does it work?", "Which is the capital of France?", "Is it going to rain today?"]
)
def test_a_first_question_pointing_at_another_subject_is_still_refused(bot: Assistant, question: str) -> None:
    assert not bot.ask(question).answerable


def test_stream_yields_pieces_then_the_full_answer(bot: Assistant) -> None:
    items = list(bot.stream("What resources does fine-tuning need?"))

    *pieces, final = items
    assert isinstance(final, Answer) and final.answerable and final.citations
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == final.text  # exactly: a client that joins the stream shows what ask() returns


def test_stream_of_refusal_ends_with_unanswerable_answer(bot: Assistant) -> None:
    *pieces, final = list(bot.stream("Who won the World Cup in 2018?"))

    assert not final.answerable and "".join(pieces) == final.text


def test_warm_ask_embeds_only_the_question(bot: Assistant) -> None:
    bot.ask("What does dropout do?")
    before = bot.embedder.texts_embedded

    bot.ask("What does dropout do?")

    assert bot.embedder.texts_embedded - before == 1  # sentences come from the cache, retrieval reuses the vector


@pytest.mark.parametrize(
    "question, history, problem",
    [
        ("", None, "empty"),
        ("   \n\t ", None, "empty"),
        ("x" * 2001, None, "limit"),
        (None, None, "text"),
        ("And prompt engineering?", "not a list", "list"),
        ("And prompt engineering?", [{"role": "system", "content": "hi"}], "role"),
        ("And prompt engineering?", [{"role": "user"}], "content"),
        ("And prompt engineering?", ["hello"], r"history\[0\]"),
    ],
)
def test_bad_input_raises_and_the_engine_keeps_working(
    bot: Assistant, question: object, history: object, problem: str
) -> None:
    with pytest.raises(InvalidQuestionError, match=problem):
        bot.ask(question, history=history)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        list(bot.stream(question, history=history))  # type: ignore[arg-type]

    assert bot.ask("What is LoRA?").answerable


def test_question_at_the_limit_is_accepted(bot: Assistant) -> None:
    question = "What is LoRA? " + "Please explain. " * 200
    answer = bot.ask(question[: bot.settings.max_question_chars])

    assert answer.query == question[: bot.settings.max_question_chars].strip()  # searched, not refused as invalid


def test_max_tokens_cuts_a_quoted_answer_and_a_refusal(bot: Assistant) -> None:
    from assistant.llm import GenerationOptions

    whole = bot.ask("How long does fine-tuning take?")
    cut = bot.answers.ask("How long does fine-tuning take?", options=GenerationOptions(max_tokens=40))
    assert not whole.truncated and cut.truncated and cut.answerable
    assert whole.text.startswith(cut.text) and len(cut.text) < len(whole.text)
    assert bot.answers.tokens.count(cut.text) <= 40
    assert cut.citations == whole.citations[: len(cut.citations)] and f"[{len(cut.citations)}]" in cut.text
    refusal = bot.answers.ask("What is the capital of France?", options=GenerationOptions(max_tokens=8))
    assert refusal.truncated and not refusal.answerable and bot.answers.tokens.count(refusal.text) <= 8
    pieces = list(bot.answers.stream("How long does fine-tuning take?", options=GenerationOptions(max_tokens=40)))
    assert "".join(p for p in pieces if isinstance(p, str)) == cut.text == pieces[-1].text


def test_a_list_quoted_from_its_middle_starts_at_its_first_item(bot: Assistant) -> None:
    answer = bot.ask("What is the difference between prompt engineering and fine-tuning?")  # a page starter

    assert answer.text.startswith("1. Approach:")  # it opened at "3. Flexibility:" (review, ux)
