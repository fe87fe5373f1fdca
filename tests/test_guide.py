"""Guided mode: scripted dialogs against the real index and model, plus the fact extractor."""

from __future__ import annotations

import http.server
import itertools
import json
import random
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from assistant import Assistant, InvalidQuestionError, guide
from assistant.corpus import read_document
from assistant.guide import (
    CLAIMS,
    CONFIRM,
    DIRECTIONS,
    FINE_TUNING,
    HYBRID,
    MAX_QUESTIONS,
    PROMPT_ENGINEERING,
    QUESTIONS,
    WEIGHTS,
    GuideSession,
    Step,
    decide,
)
from assistant.situation import FACTORS, UNKNOWN, VALUES, Fact, SituationExtractor, parse_number

if TYPE_CHECKING:
    from llama_index.llms.openai_like import OpenAILike


def converse(bot: Assistant, *replies: str) -> list[Step]:
    """Play the replies in order; the dialog must end with a recommendation on the last one."""
    session = bot.guide()
    steps = [session.reply(text) for text in replies]
    for step in steps[:-1]:
        assert step.recommendation is None and step.question, f"decided too early: {step.message}"
    assert steps[-1].recommendation is not None and steps[-1].question is None
    return steps


def assert_cited(bot: Assistant, step: Step) -> None:
    """Every reason carries a marker whose passage is a verbatim corpus span stating a known claim."""
    rec = step.recommendation
    assert rec is not None and rec.reasons
    files: dict[str, str] = {}
    for reason in rec.reasons:
        markers = [int(n) for n in re.findall(r"\[(\d+)\]", reason)]
        assert markers, f"reason without a citation: {reason}"
        for n in markers:
            passage = rec.citations[n - 1]
            if passage.source not in files:
                path = bot.settings.corpus_dir / passage.source
                files[passage.source] = read_document(path, bot.settings.corpus_dir).text
            assert files[passage.source][passage.start : passage.end] == passage.text
            assert any(re.search(c.support, passage.text) for c in CLAIMS.values()), passage.text


def test_opening_with_data_team_and_time_needs_two_questions_for_fine_tuning(bot: Assistant) -> None:
    steps = converse(
        bot,
        "We have about 50k labelled support tickets, an ML team and GPUs. We need it in 3 months.",
        "Some errors would be costly: it must be accurate and consistent.",
        "It's one stable task: routing tickets.",
    )

    rec = steps[-1].recommendation
    assert rec.approach == FINE_TUNING
    assert steps[-1].asked == 2
    assert any("50,000 labelled examples" in r and "fine-tuning is feasible" in r for r in rec.reasons)
    assert rec.confidence >= 0.8
    assert_cited(bot, steps[-1])


def test_vague_opening_then_quick_replies_leads_to_fine_tuning(bot: Assistant) -> None:
    opening = "We want an LLM to help our support team."
    steps = converse(
        bot,
        opening,
        "Tens of thousands",
        "Must be highly accurate and consistent",
        "One stable task",
        "In a few months or more",
    )

    assert [s.factor for s in steps[:-1]] == ["data", "accuracy", "tasks", "timeline"]
    assert steps[0].message.startswith("I could not pick out any facts")
    assert steps[-1].recommendation.approach == FINE_TUNING
    assert steps[-1].asked == 4
    assert_cited(bot, steps[-1])


def test_no_data_is_prompt_engineering_after_one_question(bot: Assistant) -> None:
    steps = converse(bot, "We don't have any training data and the tasks change every week.", "Yes, that's right")

    rec = steps[-1].recommendation
    assert steps[0].factor == CONFIRM  # nothing else could change the outcome, so it confirms
    assert rec.approach == PROMPT_ENGINEERING and steps[-1].asked == 1
    assert rec.reasons[0].startswith("You have no labelled training data")
    assert_cited(bot, steps[-1])


def test_small_web_team_in_a_hurry_is_prompt_engineering(bot: Assistant) -> None:
    steps = converse(
        bot,
        "We're a team of web developers with no ML experience. We have a few hundred labelled examples, "
        "it has to work by tomorrow and some variation is fine.",
        "Many tasks that change often",
    )

    rec = steps[-1].recommendation
    assert rec.approach == PROMPT_ENGINEERING and steps[-1].asked == 1
    assert rec.score < 0 and not rec.caveats
    assert_cited(bot, steps[-1])


def test_core_task_with_changing_side_tasks_is_hybrid(bot: Assistant) -> None:
    steps = converse(
        bot,
        "Our main task is classifying insurance claims, which is mission-critical, and we also have lots of "
        "small side tasks that change every month. We have 20k labelled claims.",
        "We have an ML team.",
    )

    rec = steps[-1].recommendation
    assert rec.approach == HYBRID and steps[-1].asked == 1
    assert rec.reasons[0].startswith("You have one core task plus varied side tasks")
    hybrid_passages = [p for p in rec.citations if "mission-critical" in p.text]
    assert hybrid_passages, "the hybrid reason should cite the corpus's hybrid strategy"
    assert_cited(bot, steps[-1])


def test_strong_case_with_an_urgent_deadline_is_hybrid(bot: Assistant) -> None:
    steps = converse(
        bot,
        "We have 30k labelled examples, an ML team, GPUs, accuracy must be consistent, and we need it by Friday.",
        "One stable task",
    )

    rec = steps[-1].recommendation
    assert rec.approach == HYBRID and steps[-1].asked == 1
    assert any("deadline this week" in r for r in rec.reasons)
    assert_cited(bot, steps[-1])


def test_contradiction_uses_the_later_answer_and_says_so(bot: Assistant) -> None:
    steps = converse(
        bot,
        "We have 50k labelled examples and an ML team.",
        "Actually, we don't have any labelled data at all.",
    )

    rec = steps[-1].recommendation
    assert rec.approach == PROMPT_ENGINEERING and steps[-1].asked == 1
    assert any("first said 50,000 labelled examples" in c for c in rec.caveats)
    assert any("Your team has machine-learning expertise" in c for c in rec.caveats)  # the fact against it
    assert_cited(bot, steps[-1])


def test_not_sure_to_everything_still_recommends_with_low_confidence(bot: Assistant) -> None:
    session = bot.guide()
    step = session.reply("I'm not sure yet, we are just exploring.")
    asked: list[str] = []
    while step.recommendation is None:
        asked.append(step.factor or "")
        step = session.reply("Not sure")

    rec = step.recommendation
    assert len(asked) == len(set(asked)) and 1 <= step.asked <= MAX_QUESTIONS
    assert all(f.value == UNKNOWN for f in session.facts.values()) and len(session.facts) == step.asked
    assert rec.approach == PROMPT_ENGINEERING and rec.confidence < 0.4
    assert any("not sure about" in c for c in rec.caveats)
    assert_cited(bot, step)


def test_opening_that_states_everything_asks_one_confirmation(bot: Assistant) -> None:
    steps = converse(
        bot,
        "We are a 3-person team of web developers building a support chatbot; we have no labelled data, no GPUs, "
        "and the tasks change every week. It has to ship next week and some variation is fine. "
        "General knowledge is enough.",
        "Yes",
    )

    # "a team of web developers" is read by similarity, so it is confirmed before it counts
    assert steps[0].factor == CONFIRM and "no machine-learning expertise" in steps[0].question
    assert "you said: “We are a 3-person team of web developers" in steps[0].question
    assert "expertise" not in {f.factor for f in steps[0].facts}
    assert [f.factor for f in steps[0].tentative] == ["expertise"]
    rec = steps[-1].recommendation
    assert rec.approach == PROMPT_ENGINEERING and steps[-1].asked == 1
    assert len(rec.factors) == 7 and rec.confidence == 1.0
    assert_cited(bot, steps[-1])


def test_every_question_says_why_and_its_options_are_understood() -> None:
    extractor = SituationExtractor()
    for factor, question in QUESTIONS.items():
        assert question.why and question.options[-1] == "Not sure"
        values = set()
        for option in question.options:
            facts = extractor.extract(option, expecting=factor)
            assert [f.factor for f in facts] == [factor], option
            values.add(facts[0].value)
        assert len(values) == len(question.options), f"{factor}: two options mean the same"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We have about 50k labelled tickets", {"data": "plenty"}),
        ("no training data", {"data": "none"}),
        ("we don't have GPUs or an ML team", {"compute": "none", "expertise": "no"}),
        ("by tomorrow", {"timeline": "urgent"}),
        ("tasks change every week", {"tasks": "varied"}),  # "every week" is not a deadline
        ("some variation is fine", {"accuracy": "flexible"}),
        ("the model doesn't know our product codes", {"knowledge": "needed"}),
        ("We have an ML team, not sure about the deadline", {"expertise": "yes", "timeline": UNKNOWN}),
        ("Some errors would be costly", {"accuracy": "high"}),
        ("no mistakes allowed", {"accuracy": "high"}),
        ("a few mistakes are OK, it does not have to be perfect", {"accuracy": "flexible"}),
        ("fine-tuning gives consistent results", {}),  # about the method, not the user
        ("Our main task is triage; there are also many other small tasks", {"tasks": "mixed"}),
    ],
)
def test_extractor_reads_everyday_phrasing(text: str, expected: dict[str, str]) -> None:
    facts = SituationExtractor().extract(text)
    assert {f.factor: f.value for f in facts} == expected


@pytest.mark.parametrize(
    ("text", "number"),
    [("50k", 50_000), ("about 2,000", 2_000), ("a few hundred", 300), ("none", 0), ("1.5k", 1_500), ("12", 12)],
)
def test_parse_number(text: str, number: float) -> None:
    assert parse_number(text) == number


def test_paraphrases_are_matched_by_similarity_but_negations_are_not_guessed(bot: Assistant) -> None:
    extractor = SituationExtractor(bot.embedder.embed_query)

    assert [(f.factor, f.value) for f in extractor.extract("Our engineers have trained many deep networks")] == [
        ("expertise", "yes")
    ]
    assert [(f.factor, f.value) for f in extractor.extract("It is fine if the results differ slightly")] == [
        ("accuracy", "flexible")
    ]
    assert extractor.extract("Nobody here has ever built a neural network") == []
    assert extractor.extract("We are a bank in Germany") == []


def test_why_explains_the_points_and_restart_forgets(bot: Assistant) -> None:
    session = bot.guide()
    asked = session.reply("We have 50k labelled examples, an ML team, and the tasks never change.")
    mid = session.reply("Why?")
    assert (mid.question, mid.asked) == (asked.question, asked.asked)
    assert mid.message == QUESTIONS[asked.factor].explain != asked.why  # not the caption already shown
    while (step := session.reply("Not sure")).recommendation is None:
        pass

    why = session.reply("why?")
    assert why.recommendation == step.recommendation
    assert "data: 50,000 labelled examples -> 3 x +1 = +3.0" in why.message
    assert f"Total {step.recommendation.score:+.1f}" in why.message

    fresh = session.reply("start over")
    assert fresh.asked == 0 and fresh.recommendation is None and session.facts == {}
    again = session.reply("We have no GPUs.")
    assert again.recommendation is None and [f.factor for f in again.facts] == ["compute"]


def test_bad_replies_raise_and_lose_nothing(bot: Assistant) -> None:
    session = bot.guide()
    first = session.reply("We have 50k labelled examples.")
    for bad in ("", "   ", "x" * (bot.settings.max_question_chars + 1)):
        with pytest.raises(InvalidQuestionError):
            session.reply(bad)
    assert [f.factor for f in first.facts] == ["data"] and session.asked == [first.factor]


def test_steps_and_recommendations_serialise_to_json(bot: Assistant) -> None:
    steps = converse(bot, "We have no labelled data and tasks change every week.", "yes")

    for step in steps:
        data = json.loads(json.dumps(step.to_dict()))
        assert data["max_questions"] == MAX_QUESTIONS
    rec = json.loads(json.dumps(steps[-1].to_dict()))["recommendation"]
    assert rec["approach"] == PROMPT_ENGINEERING
    assert {c["source"] for c in rec["citations"]} <= {p.name for p in bot.settings.corpus_dir.iterdir()}


class _FakeOpenAI(http.server.BaseHTTPRequestHandler):
    """Speaks just enough of the OpenAI chat-completions protocol; replies with ``server.content``."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.prompts.append(body["messages"][-1]["content"])  # type: ignore[attr-defined]
        status, content = self.server.reply  # type: ignore[attr-defined]
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        data = json.dumps(payload if status == 200 else {"error": {"message": content}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_llm_server() -> Iterator[http.server.HTTPServer]:
    """A local OpenAI-compatible server on 127.0.0.1; set ``.reply = (status, content)``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    server.reply = (200, "{}")  # type: ignore[attr-defined]
    server.prompts = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _llm(server: http.server.HTTPServer) -> OpenAILike:
    from llama_index.llms.openai_like import OpenAILike

    host, port = server.server_address[:2]
    return OpenAILike(
        model="fake", api_base=f"http://{host}:{port}/v1", api_key="test", is_chat_model=True, max_retries=0, timeout=5
    )


def test_an_llm_reads_what_the_rules_cannot(bot: Assistant, fake_llm_server: http.server.HTTPServer) -> None:
    fake_llm_server.reply = (200, '```json\n{"expertise": "no", "data": "plenty", "data_count": 40000}\n```')
    session = GuideSession(bot.retrieve, llm=_llm(fake_llm_server))

    step = session.reply("Nobody here has ever built a neural network, but we sit on 40 thousand tagged chats.")

    # what the LLM read is not a rule's reading: it is confirmed before it counts
    assert step.facts == () and step.factor == CONFIRM
    assert {f.factor: f.value for f in step.tentative} == {"expertise": "no", "data": "plenty"}
    assert "about 40,000 labelled examples" in step.question and "you said: “Nobody here" in step.question
    assert "Nobody here has ever built a neural network" in fake_llm_server.prompts[0]
    fake_llm_server.reply = (200, "{}")
    confirmed = session.reply("Yes, that's right")
    assert {f.factor: f.value for f in confirmed.facts} == {"expertise": "no", "data": "plenty"}


def test_a_failing_llm_falls_back_to_the_rules(bot: Assistant, fake_llm_server: http.server.HTTPServer) -> None:
    fake_llm_server.reply = (500, "upstream exploded")
    session = GuideSession(bot.retrieve, llm=_llm(fake_llm_server))

    step = session.reply("We have 50k labelled tickets and no GPUs.")

    assert {f.factor: f.value for f in step.facts} == {"data": "plenty", "compute": "none"}
    assert step.question is not None and fake_llm_server.prompts


def test_the_documented_weights_are_the_ones_used() -> None:
    doc = guide.__doc__ or ""
    for factor, weight in WEIGHTS.items():
        row = re.search(rf"^{factor}\s+{weight}\s+(.*(?:\n {{10,}}.*)*)", doc, re.MULTILINE)
        assert row, f"{factor} {weight} is not in the table"
        for value, direction in DIRECTIONS[factor].items():
            shown = "0" if direction == 0 else f"{direction:+g}"
            assert re.search(rf"\b{value}(?:\s*\([^)]*\))?\s+{re.escape(shown)}(?![\d.])", row.group(1)), (
                factor,
                value,
            )


def test_stopping_rule_agrees_with_trying_every_remaining_answer() -> None:
    rng = random.Random(7)
    for _ in range(300):
        open_factors = rng.sample(FACTORS, rng.randint(1, 4))
        known = {
            f: Fact(f, rng.choice(VALUES[f]), "", "") for f in FACTORS if f not in open_factors and rng.random() < 0.8
        }
        brute: set[str] = set()
        for combo in itertools.product(*[(*VALUES[f], UNKNOWN) for f in open_factors]):
            facts = dict(known)
            facts.update({f: Fact(f, v, "", "") for f, v in zip(open_factors, combo) if v != UNKNOWN})
            brute.add(decide(facts)[0])
        assert guide._outcomes(known, open_factors) == brute, (known, open_factors)


# -- issue 14: no invented facts, unreadable replies, confidence, the correction flow ---------------------------

BANK = (
    "We're a big retail bank. We have around 200k labelled documents (loan applications, each tagged with the "
    "right category), an in-house ML team, GPUs, and regulators demand very high accuracy."
)


def _quotes(text: str) -> list[str]:
    return re.findall(r"you said: “([^”]*)”", text)


def test_every_fact_comes_from_the_users_words_shown_beside_it(bot: Assistant) -> None:
    session = bot.guide()
    step = session.reply(BANK)

    assert "knowledge" not in {f.factor for f in (*step.facts, *step.tentative)}  # "an in-house ML team" is not it
    assert {f.factor: f.value for f in step.facts} == {
        "data": "plenty", "expertise": "yes", "compute": "available", "accuracy": "high",
    }  # fmt: skip
    for fact in step.facts:
        assert fact.quote and fact.quote in BANK
    assert _quotes(step.message) and all(q in BANK for q in _quotes(step.message))
    while step.recommendation is None:
        step = session.reply(step.options[0])
    rec = step.recommendation
    assert not any("knowledge the base model lacks" in r for r in rec.reasons)
    typed = BANK + " ".join(t["content"] for t in session.history if t["role"] == "user")
    for reason in rec.reasons:
        if reason.startswith(("You", "Your")):
            quotes = _quotes(reason)
            assert len(quotes) == 1 and quotes[0].rstrip("…") in typed, reason
    assert_cited(bot, step)


def test_a_fact_read_by_similarity_counts_only_once_confirmed(bot: Assistant) -> None:
    session = bot.guide()
    step = session.reply("Our engineers have trained many deep networks.")
    assert step.factor == CONFIRM and step.facts == ()
    assert [(f.factor, f.value, f.source) for f in step.tentative] == [("expertise", "yes", "similarity")]
    assert "you said: “Our engineers have trained many deep networks”" in step.question

    no = session.reply("No, let me correct something")
    assert no.factor == "correct" and no.options == ()  # no yes/no buttons under "What should I correct?"
    assert no.asked == step.asked  # the correction prompt is not counted as a question
    assert "expertise" not in session.facts and not session.tentative

    fixed = session.reply("actually we do have about 2,000 labelled chats")
    assert session.facts["data"].value == "moderate" and "about 2,000 labelled examples" in fixed.message
    assert fixed.asked == step.asked + 1 and fixed.factor in FACTORS


def test_yes_makes_the_similarity_fact_count(bot: Assistant) -> None:
    session = bot.guide()
    session.reply("Our engineers have trained many deep networks.")
    step = session.reply("yes")
    assert session.facts["expertise"].value == "yes" and not session.facts["expertise"].tentative
    assert step.factor in FACTORS


def test_an_unreadable_reply_is_asked_again_and_a_number_picks_an_option(bot: Assistant) -> None:
    session = bot.guide()
    first = session.reply("We want an LLM to help our support team.")
    assert first.factor == "data"

    again = session.reply("banana")
    assert (again.question, again.factor, again.asked) == (first.question, first.factor, first.asked)
    assert "banana" in again.message and f"1 to {len(first.options)}" in again.message
    assert "data" not in session.facts  # nothing recorded, not even "not sure"

    meaning = session.reply("what do you mean?")
    assert meaning.question == first.question and meaning.message == QUESTIONS["data"].explain
    assert meaning.asked == first.asked

    picked = session.reply("4")  # the fourth option, "Tens of thousands"
    assert session.facts["data"].value == "plenty" and session.facts["data"].quote == first.options[3]
    assert picked.asked == first.asked + 1


def test_a_couple_hundred_is_a_quantity_not_unsure() -> None:
    facts = SituationExtractor().extract("maybe a couple hundred examples", expecting="data")
    assert [(f.factor, f.value, f.quantity) for f in facts] == [("data", "few", 200)]
    facts = SituationExtractor().extract("a few thousand maybe", expecting="data")
    assert [(f.factor, f.value) for f in facts] == [("data", "moderate")]


def test_mostly_unknown_leans_to_prompt_engineering_and_says_what_would_change_it(bot: Assistant) -> None:
    session = bot.guide()
    step = session.reply("We have a few thousand labelled examples maybe.")
    while step.recommendation is None:
        step = session.reply("not sure")

    rec = step.recommendation
    assert rec.approach == PROMPT_ENGINEERING  # the score alone (+1.5) would say fine-tuning
    assert rec.score >= guide.DECISION_THRESHOLD
    assert rec.reasons[0].startswith("Little is known about your situation")
    assert rec.changes and any("fine-tuning" in c for c in rec.changes)
    assert rec.confidence == 0.0  # the data points the other way and everything else is open
    assert "Less than half of the decision's weight is known" in session.reply("why?").message
    assert_cited(bot, step)


def test_confidence_of_an_unambiguous_case_is_full_and_a_fact_against_lowers_it(bot: Assistant) -> None:
    steps = converse(
        bot,
        "We're a 3-person startup building a customer support bot. We have no training data at all and we need "
        "to demo next week.",
        "Yes, that's right",
    )
    assert steps[-1].recommendation.approach == PROMPT_ENGINEERING
    assert steps[-1].recommendation.confidence == 1.0  # nothing points elsewhere and nothing open could change it

    steps = converse(bot, "We have no labelled data at all, but we do have an ML team.", "Yes, that's right")
    rec = steps[-1].recommendation
    assert rec.approach == PROMPT_ENGINEERING
    assert rec.confidence == round((14 - WEIGHTS["expertise"]) / 14, 2)  # 89%: the ML team points the other way
    assert "Confidence** is the share" in (guide.__doc__ or "") and "14 - weight of facts" in (guide.__doc__ or "")


def test_the_first_noted_line_stays_in_the_transcript(bot: Assistant) -> None:
    session = bot.guide()
    first = session.reply("We have 50k labelled examples and an ML team.")
    session.reply(first.options[0])
    assistant_turns = [t["content"] for t in session.history if t["role"] == "assistant"]
    assert assistant_turns[0].startswith("Noted: 50,000 labelled examples")
    assert first.question in assistant_turns[0]


def test_a_stale_quick_reply_is_recorded_once(bot: Assistant) -> None:
    session = bot.guide()
    first = session.reply("We want an LLM to help our support team.")
    second = session.reply(first.options[3], turn=first.turn)
    again = session.reply(first.options[3], turn=first.turn)  # the same click arriving twice
    assert again == second
    assert [t["content"] for t in session.history if t["role"] == "user"].count(first.options[3]) == 1


def test_why_during_a_question_explains_instead_of_repeating_the_caption(bot: Assistant) -> None:
    session = bot.guide()
    first = session.reply("We want an LLM to help our support team.")
    why = session.reply("why?")
    assert why.message and why.message != first.why and why.question == first.question


@pytest.mark.parametrize(
    ("question", "offer"),
    [
        ("Which should I use?", True),
        ("Should we fine-tune or use prompts for our chatbot?", True),
        ("What is the right approach for us?", True),
        ("What is LoRA?", False),
        ("How long does fine-tuning take?", False),
    ],
)
def test_a_which_should_i_use_question_is_recognised(question: str, offer: bool) -> None:
    assert guide.wants_recommendation(question) is offer


def test_the_labelled_fact_set_reads_no_unstated_fact() -> None:
    from bench import guide_facts

    labelled = guide_facts.cases()
    assert len(labelled) >= 30
    result = guide_facts.score(SituationExtractor().extract, labelled)
    assert result["unstated"] == 0 and result["wrong_value"] == 0, result["misses"]
    assert result["recall"] >= 0.9


def test_the_advisor_tables_are_data_shipped_with_the_package() -> None:
    from assistant import advisor

    tables = advisor.load()
    assert set(tables.questions) == set(FACTORS) and tables.claims == CLAIMS
    assert all(q.explain for q in tables.questions.values())
    with pytest.raises(ValueError, match="claims"):
        advisor._parse({**_raw_advisor(), "claims": {}})


def _raw_advisor() -> dict:
    import importlib.resources

    import yaml

    return yaml.safe_load(importlib.resources.files("assistant").joinpath("advisor.yaml").read_text())
