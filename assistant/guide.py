"""Guided mode: a few questions about your situation, then a cited recommendation.

The domain (factors, weights, questions, the corpus claims behind each reason) is data, in
``assistant/advisor.yaml``; this module is the dialog and the arithmetic over it.

The first reply describes the situation in the user's own words; `assistant.situation` reads facts
from it, each with the words it came from (shown back as "you said: …"). A fact read by a rule
counts at once; one read by similarity to an example sentence (or by an LLM) is *tentative* and
counts only after the user confirms it. The session then asks, one at a time, only about factors
it does not know yet and that could still change the outcome, and recommends once nothing left
could change it (or after `MAX_QUESTIONS`). At least one question is always asked: when the opening
already says everything, that question is a confirmation of what was understood.

A reply the session cannot read is never guessed: the question comes again with what it accepts
(an option's number, the user's own words, or "not sure"); "what do you mean?" and "why?" explain
the question. Quick replies can be given by their number.

The decision is a transparent score. Each known fact adds ``weight × direction`` points, where the
direction runs from -1 (towards prompt engineering) to +1 (towards fine-tuning):

=========  ======  =============================================================================
Factor     Weight  Direction of each value
=========  ======  =============================================================================
data       3.0     none -1 (and rules fine-tuning out), few (<1,000) -0.5, some 0,
                   moderate (1,000-9,999) +0.5, plenty (10,000+) +1
accuracy   2.0     high (must be accurate and consistent) +1, flexible (variation is fine) -1
tasks      2.0     focused (one stable task) +1, varied (many or fast-changing) -1, mixed 0
timeline   2.0     urgent (2 weeks or less) -1, weeks (under 2 months) 0, months +0.5
compute    2.0     none -1, limited -0.5, available +1
expertise  1.5     yes (ML team) +1, no -1
knowledge  1.5     needed (the base model lacks it) +1, not_needed -1
=========  ======  =============================================================================

Decision, with ``T = DECISION_THRESHOLD`` (1.5) and the total weight 14:

1. No labelled data: prompt engineering (fine-tuning trains on task-specific data).
2. Most of the situation unknown (the known facts carry less than ``MIN_KNOWN_SHARE``, half, of
   the total weight): prompt engineering first, the lighter and reversible path, then revisit;
   the recommendation lists the answers that would change it.
3. A core task plus varied side tasks: hybrid, unless the score is at or below ``-T``.
4. Score ``>= T``: fine-tuning; hybrid instead when the tasks are varied or the deadline urgent
   (fine-tune the core task, prompts for the rest or in the meantime).
5. Otherwise: prompt engineering, the lighter and quicker path to start from.

**Confidence** is the share of the decision's total weight that does not argue against the
recommendation or leave it open::

    confidence = (14 - weight of facts pointing the other way - weight of open factors) / 14

where the open factors (not asked, or answered "not sure") count only if some answer to them could
still change the recommendation. So 100% means: every fact you gave points this way or neither
way, and no answer to the remaining questions could change it (no labelled data and a demo next
week is 100%: nothing else can make fine-tuning possible). A fact pointing the other way lowers
it by its weight (an ML team under a no-data recommendation: 1.5/14, to 89%); "not sure" to
everything gives 0%: the recommendation is only the safe default. Facts that point the other way
become caveats, each still citing its passage.

Every reason cites the corpus: per claim a query is retrieved once per session and the first
passage that matches the claim's pattern is cited, verbatim, with its offsets.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from .advisor import Claim, Question
from .advisor import load as load_advisor
from .errors import InvalidQuestionError
from .situation import FACTORS, UNKNOWN, VALUES, Fact, SituationExtractor, is_no, is_yes
from .validation import validate_question

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from .engine import Assistant
    from .retrieval import Passage

logger = logging.getLogger(__name__)

#: Said to a reply after the recommendation that tells nothing new ("thanks", "ok").
UNCHANGED = (
    'That tells me nothing new, so my recommendation stands. Ask "why?" for the reasoning, '
    'correct a fact ("we have 10,000 labelled examples"), or say "start over".'
)

ADVISOR = load_advisor()

PROMPT_ENGINEERING = "prompt_engineering"
FINE_TUNING = "fine_tuning"
HYBRID = "hybrid"

MAX_QUESTIONS = ADVISOR.max_questions
DECISION_THRESHOLD = ADVISOR.decision_threshold
MIN_KNOWN_SHARE = ADVISOR.min_known_share

WEIGHTS: dict[str, float] = ADVISOR.weights
TOTAL_WEIGHT = sum(WEIGHTS.values())
DIRECTIONS: dict[str, dict[str, float]] = {
    f: {v: spec.direction for v, spec in specs.items()} for f, specs in ADVISOR.values.items()
}
QUESTIONS: dict[str, Question] = ADVISOR.questions
CLAIMS: dict[str, Claim] = ADVISOR.claims
#: For each (factor, value): the claim behind it, and what it means, joined to the fact with "so".
CONSEQUENCES: dict[tuple[str, str], tuple[str, str]] = {
    (f, v): (spec.claim, spec.so) for f, specs in ADVISOR.values.items() for v, spec in specs.items()
}
NEXT_STEPS: dict[str, tuple[str, ...]] = ADVISOR.next_steps
FOLLOW_UP_QUESTIONS: dict[str, tuple[str, ...]] = ADVISOR.follow_up_questions

OPENING = ADVISOR.opening
OPENING_WHY = ADVISOR.opening_why
CONFIRM = "confirm"
CORRECT = "correct"
YES_NO = ("Yes, that's right", "No, let me correct something")
#: Quotes longer than this are cut (with "…") where they are shown beside a fact.
QUOTE_CHARS = 90

__all__ = [
    "CONFIRM", "CORRECT", "FINE_TUNING", "HYBRID", "PROMPT_ENGINEERING", "Claim", "FactorScore",
    "GuideSession", "Question", "Recommendation", "Step", "decide", "wants_recommendation",
]  # fmt: skip


def wants_recommendation(question: str) -> bool:
    """Whether a chat question asks which approach to use, so the guided dialog is worth offering."""
    return bool(ADVISOR.offer_guide.search(question))


def said(fact: Fact) -> str:
    """The user's words behind a fact, quoted and cut to `QUOTE_CHARS`."""
    quote = " ".join(fact.quote.split())
    if len(quote) > QUOTE_CHARS:
        quote = quote[: QUOTE_CHARS - 1].rstrip() + "…"
    return f"you said: “{quote}”"


@dataclass(frozen=True)
class FactorScore:
    """How one fact moved the score: ``points = weight × direction``; ``quote`` is the user's words."""

    factor: str
    value: str
    detail: str
    weight: float
    direction: float
    points: float
    quote: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Recommendation:
    """The advice: an approach, how sure, and why, each reason citing a corpus passage by ``[n]``."""

    approach: str  # "prompt_engineering", "fine_tuning" or "hybrid"
    confidence: float  # 0..1, as defined in the module docstring
    reasons: tuple[str, ...]  # short bullets with the user's words, each ending with [n] markers
    citations: tuple[Passage, ...]
    next_steps: tuple[str, ...]
    caveats: tuple[str, ...]
    score: float  # sum of the factor points; positive leans to fine-tuning
    factors: tuple[FactorScore, ...]
    changes: tuple[str, ...] = ()  # answers to the open questions that would change the approach
    follow_ups: tuple[str, ...] = ()  # questions to ask the documents about this approach

    @property
    def label(self) -> str:
        """The approach for people: "prompt engineering", "fine-tuning" or "hybrid"."""
        return ADVISOR.approaches[self.approach]

    def explain(self) -> str:
        """How the recommendation was reached: the points per factor, the rule applied, the reasons."""
        head = f"I recommend {self.label} (confidence {self.confidence:.0%})."
        lines = [f"{head} Points per factor (+ leans to fine-tuning, - to prompt engineering):"]
        for f in self.factors:
            lines.append(f"- {f.factor}: {f.detail} -> {f.weight:g} x {f.direction:+g} = {f.points:+.1f}")
        lines.append(f"Total {self.score:+.1f}; fine-tuning needs {DECISION_THRESHOLD:+g} or more. {_rule_text(self)}")
        lines.append(
            "Confidence is the share of the decision's weight that neither points the other way nor is still open."
        )
        lines.append("Reasons:")
        lines.extend(f"- {r}" for r in self.reasons)
        lines.extend(f"- Caveat: {c}" for c in self.caveats)
        lines.extend(f"- What would change it: {c}" for c in self.changes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "approach": self.approach,
            "label": self.label,
            "confidence": self.confidence,
            "reasons": list(self.reasons),
            "citations": [p.to_dict() for p in self.citations],
            "next_steps": list(self.next_steps),
            "caveats": list(self.caveats),
            "changes": list(self.changes),
            "follow_ups": list(self.follow_ups),
            "score": self.score,
            "factors": [f.to_dict() for f in self.factors],
        }


@dataclass(frozen=True)
class Step:
    """What the session says back after a reply: a question, or a recommendation, and a message."""

    question: str | None
    why: str | None  # why the question matters
    options: tuple[str, ...]  # quick replies for the question; the user may also type their number
    factor: str | None  # what the question is about ("confirm" or "correct" for those prompts)
    asked: int  # questions asked so far, this one included (a correction prompt is not counted)
    max_questions: int
    message: str  # what was understood, a re-ask's explanation, or the explanation after "why?"
    recommendation: Recommendation | None = None
    facts: tuple[Fact, ...] = ()  # the facts that count
    turn: int = 0  # replies taken so far; pass it back to `GuideSession.reply` to drop a stale click
    tentative: tuple[Fact, ...] = ()  # facts read by similarity, waiting for the user's confirmation

    @property
    def done(self) -> bool:
        """Whether a recommendation has been made."""
        return self.recommendation is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "question": self.question,
            "why": self.why,
            "options": list(self.options),
            "factor": self.factor,
            "asked": self.asked,
            "max_questions": self.max_questions,
            "message": self.message,
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
            "facts": [f.to_dict() for f in self.facts],
            "tentative": [f.to_dict() for f in self.tentative],
            "turn": self.turn,
        }


_WHY = re.compile(
    r"^\s*(?:why|why (?:that|this|so|is that|not|do you ask)\b.*|explain\b.*|how did you decide\b.*|"
    r"what(?:'s| is) the reasoning\b.*)\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_WHAT = re.compile(
    r"^\s*(?:what do you mean\b.*|what does (?:that|this|it|this question) mean\b.*|what(?:'s| is) (?:meant|that)\b.*|"
    r"i don'?t (?:understand|get it)\b.*|(?:can you |please )?(?:clarify|rephrase)\b.*|huh|what|meaning|"
    r"sorry\s*\?)\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_RESTART = re.compile(
    r"^\s*/?(?:start over|restart|reset|start again|begin again|new session)\s*[.!]*\s*$", re.IGNORECASE
)
_NUMBER = re.compile(r"^\s*(?:option\s*|number\s*|#|\()?(\d{1,2})\s*[.)]?\s*$", re.IGNORECASE)
_NOTHING = re.compile(r"^\s*(?:nothing|never ?mind|all good|it'?s fine|no(?:thing)? else|none)\s*[.!]*\s*$", re.I)


class GuideSession:
    """One guided conversation; not shared between users.

    Read ``history`` (turns as role/content dicts), ``facts`` (what counts, by factor) and
    ``tentative`` (facts read by similarity, awaiting confirmation).
    """

    def __init__(
        self,
        retrieve: Callable[[str, int], list[Passage]],
        embed: Callable[[str], Any] | None = None,
        llm: LLM | None = None,
        *,
        max_chars: int = 2000,
        max_questions: int = MAX_QUESTIONS,
    ) -> None:
        """Args:
        retrieve: Finds corpus passages, ``retrieve(query, k)``, best first (``Assistant.retrieve``).
        embed: Embeds a clause for paraphrase matching (``Embedder.embed_query``); rules only without it.
        llm: A LlamaIndex LLM to read facts from replies; the rules remain the fallback.
        max_chars: The longest reply accepted.
        max_questions: The most follow-up questions asked before recommending.
        """
        self._retrieve = retrieve
        self.extractor = SituationExtractor(embed, llm)
        self.max_chars = max_chars
        self.max_questions = max(1, min(max_questions, MAX_QUESTIONS))
        self._citations: dict[str, Passage | None] = {}
        self.turn = 0
        self.restart()

    @classmethod
    def from_assistant(cls, assistant: Assistant) -> GuideSession:
        """A session that cites the assistant's index and reads replies with its embedding model and LLM."""
        return cls(
            assistant.retrieve,
            assistant.embedder.embed_query,
            assistant.llm,
            max_chars=assistant.settings.max_question_chars,
        )

    # -- state ------------------------------------------------------------------------------

    def restart(self) -> Step:
        """Forget everything and start again; the next reply is a new description.

        Returns:
            A step whose question is the opening prompt.
        """
        self.facts: dict[str, Fact] = {}
        self.tentative: dict[str, Fact] = {}
        self.history: list[dict[str, str]] = []
        self.asked: list[str] = []
        self.corrections: list[tuple[Fact, Fact]] = []
        self.recommendation: Recommendation | None = None
        self._pending: str | None = None  # the factor of the question awaiting an answer
        self.last = Step(OPENING, OPENING_WHY, (), None, 0, self.max_questions, "", turn=self.turn)
        return self.last

    @property
    def known(self) -> dict[str, Fact]:
        """The facts with a value (not "not sure") that count."""
        return {k: f for k, f in self.facts.items() if f.known}

    # -- the conversation -------------------------------------------------------------------

    def reply(self, text: str, *, turn: int | None = None) -> Step:
        """Take the user's next message and say what comes next.

        Args:
            text: The opening description, an answer to the last question (or an option's number),
                a correction, "why?", "what do you mean?" or "start over".
            turn: The ``Step.turn`` the reply answers. A quick reply clicked twice, or on a question
                already answered, carries an old turn and is ignored: the current step comes back.

        Returns:
            The next question, or the recommendation once enough is known.

        Raises:
            InvalidQuestionError: The message is empty, too long or not text.
        """
        try:
            text = validate_question(text, self.max_chars)
        except InvalidQuestionError as exc:
            raise InvalidQuestionError(str(exc).replace("question", "reply", 1)) from None
        if turn is not None and turn != self.turn:
            logger.info("Ignored a reply for turn %s; the session is at turn %s", turn, self.turn)
            return self.last
        self.turn += 1
        if _RESTART.match(text):
            return self.restart()
        self.history.append({"role": "user", "content": text})
        step = self._explain() if _WHY.match(text) or _WHAT.match(text) else self._advance(text)
        step = replace(step, turn=self.turn)
        said_back = "\n\n".join(x for x in (step.message, step.question) if x)
        self.history.append({"role": "assistant", "content": said_back or "Here is my recommendation."})
        self.last = step
        return step

    def _advance(self, text: str) -> Step:
        pending = self._pending
        if pending is not None and pending != CORRECT:
            text = self._option_by_number(text, pending)
        if pending == CONFIRM:
            return self._after_confirm(text)
        if pending == CORRECT:
            return self._after_correction(text)
        expecting = pending if pending in FACTORS else None
        found = self.extractor.extract(text, expecting)
        if expecting and len(text) <= QUOTE_CHARS:
            found = [replace(f, quote=text) for f in found]  # a short answer is quoted whole, not by clause
        if pending in FACTORS and not found:
            return self._reask(text)
        noted = self._record(found)
        message = _noted_text(noted)
        if not found and not self.asked:
            message = "I could not pick out any facts from that, so let me ask."
        return self._next(message)

    def _option_by_number(self, text: str, pending: str) -> str:
        """ "2" for the second quick reply; the text unchanged otherwise."""
        m = _NUMBER.match(text)
        options = self._current_question().options
        if m and 1 <= int(m.group(1)) <= len(options):
            return options[int(m.group(1)) - 1]
        return text

    def _after_confirm(self, text: str) -> Step:
        found = self.extractor.extract(text)
        if is_yes(text) and not found:
            for factor, fact in self.tentative.items():
                self.facts[factor] = fact.confirmed()
            confirmed = list(self.tentative.values())
            self.tentative = {}
            self._pending = None
            return self._next("Thanks, noted." if confirmed else "")
        if is_no(text) and not found:
            dropped = list(self.tentative.values())
            self.tentative = {}
            self._pending = CORRECT
            message = f"I set aside what I was unsure of ({'; '.join(f.detail for f in dropped)})." if dropped else ""
            return self._question_step(self._correct_question(), message)
        if found:  # a correction typed straight away
            self.tentative = {}
            self._pending = None
            return self._next(_noted_text(self._record(found)))
        return self._reask(text)

    def _after_correction(self, text: str) -> Step:
        found = self.extractor.extract(text)
        if found:
            self._pending = None
            return self._next(_noted_text(self._record(found)))
        if _NOTHING.match(text) or is_no(text):
            self._pending = None
            return self._next("")
        return self._reask(text)

    def _reask(self, text: str) -> Step:
        """The same question again, saying what went wrong and what it accepts; nothing is recorded."""
        q = self._current_question()
        shown = text if len(text) <= 40 else text[:39] + "…"
        if q.options:
            accepts = f"Type a number from 1 to {len(q.options)} for one of the options, or say it in your own words"
        else:
            accepts = "Type the fact in your own words, for example “we have about 2,000 labelled examples”"
        if q.factor in FACTORS:
            accepts += ", or “not sure”"
        message = (
            f"I could not match “{shown}” to an answer to this question. {accepts}. Ask “what do you mean?” for more."
        )
        return self._question_step(q, message)

    def _record(self, found: list[Fact]) -> list[Fact]:
        noted: list[Fact] = []
        for fact in found:
            old = self.facts.get(fact.factor)
            if fact.tentative and fact.known:
                if old is not None and old.known:
                    continue  # a rule already read this factor; a similarity guess never overrides it
                self.tentative[fact.factor] = fact
                continue
            if old is not None and not fact.known and old.known:
                continue  # "not sure" never erases an answer
            if old is not None and old.known and fact.known and old.value != fact.value:
                self.corrections.append((old, fact))
                logger.info("Fact %s changed from %s to %s", fact.factor, old.value, fact.value)
            self.tentative.pop(fact.factor, None)
            self.facts[fact.factor] = fact
            noted.append(fact)
        return noted

    def _next(self, message: str) -> Step:
        """Ask the next question, or recommend."""
        self._pending = None
        if self.tentative and len(self.asked) < self.max_questions:
            return self._ask(CONFIRM, message)
        self.tentative = {}
        if self.recommendation is None:
            factor = self._next_factor()
            if factor is not None:
                return self._ask(factor, message)
        return self._finish(message)

    def _finish(self, message: str) -> Step:
        self._pending = None
        before, self.recommendation = self.recommendation, self._recommend()
        if not message and before is not None and before == self.recommendation:
            message = UNCHANGED
        return Step(
            None, None, (), None, len(self.asked), self.max_questions,
            message or "Here is my recommendation.", self.recommendation, tuple(self.facts.values()),
        )  # fmt: skip

    def _ask(self, factor: str, message: str) -> Step:
        self.asked.append(factor)
        self._pending = factor
        return self._question_step(self._current_question(), message)

    def _question_step(self, q: Question, message: str) -> Step:
        return Step(q.text, q.why, q.options, q.factor, len(self.asked), self.max_questions, message,
                    None, tuple(self.facts.values()), self.turn, tuple(self.tentative.values()))  # fmt: skip

    def _next_factor(self) -> str | None:
        """The next factor to ask about; ``None`` when the recommendation cannot change any more."""
        if len(self.asked) >= self.max_questions:
            return None
        open_factors = [f for f in FACTORS if f not in self.facts]
        if not open_factors:
            return CONFIRM if not self.asked else None
        if _outcomes(self.known, open_factors) == {decide(self.known)[0]}:
            # Nothing left could change the approach: confirm instead, if nothing was asked yet.
            return CONFIRM if not self.asked else None
        for factor in open_factors:
            if len(_outcomes(self.known, [factor])) > 1:
                return factor
        return open_factors[0]

    def _explain(self) -> Step:
        if self._pending is not None:
            q = self._current_question()
            return self._question_step(q, q.explain or q.why)
        if self.recommendation is not None:
            message = self.recommendation.explain()
            return Step(None, None, (), None, len(self.asked), self.max_questions, message,
                        self.recommendation, tuple(self.facts.values()))  # fmt: skip
        return Step(OPENING, OPENING_WHY, (), None, 0, self.max_questions, OPENING_WHY)

    def _current_question(self) -> Question:
        if self._pending == CONFIRM:
            return self._confirm_question()
        if self._pending == CORRECT:
            return self._correct_question()
        assert self._pending is not None
        return QUESTIONS[self._pending]

    def _confirm_question(self) -> Question:
        if self.tentative:
            items = "; ".join(f"{f.detail} ({said(f)})" for f in self.tentative.values())
            return Question(
                CONFIRM,
                f"I think you meant: {items}. Did I get this right?",
                "I read this from your words by similarity, not by a rule, so it only counts once you confirm it.",
                YES_NO,
                "Say yes to use it, or no and I will ask you directly instead. You can also type the right fact.",
            )
        understood = "; ".join(f"{f.detail} ({said(f)})" for f in self.facts.values() if f.known)
        return Question(
            CONFIRM,
            f"Did I get this right: {understood or 'nothing definite yet'}?",
            "Everything I recommend rests on these facts, so please correct anything I misread.",
            YES_NO,
            "Each item is something I read from your words, with the words beside it. Say yes if they are all "
            "right; otherwise say no, or type the right fact, for example “we have about 2,000 labelled examples”.",
        )

    def _correct_question(self) -> Question:
        return Question(
            CORRECT,
            "What should I correct? Type the right fact in your own words.",
            "I only use what you tell me.",
            (),
            "Write the fact as you would say it, for example “we have about 2,000 labelled examples” or "
            "“the deadline is in three months”. Say “nothing” to go on.",
        )

    # -- the recommendation -----------------------------------------------------------------

    def _recommend(self) -> Recommendation:
        known = self.known
        approach, score = decide(known)
        factors = tuple(
            FactorScore(f.factor, f.value, f.detail, WEIGHTS[f.factor], DIRECTIONS[f.factor][f.value],
                        round(WEIGHTS[f.factor] * DIRECTIONS[f.factor][f.value], 2), f.quote)
            for f in (known[k] for k in FACTORS if k in known)
        )  # fmt: skip
        citations: list[Passage] = []
        reasons: list[str] = []
        caveats: list[str] = []
        if _too_little_known(known) and approach == PROMPT_ENGINEERING and "data" not in _forcing(known):
            _, text = ADVISOR.general_reasons["little_known"]
            reasons.append(f"{text} {self._marker(ADVISOR.general_reasons['little_known'][0], citations)}".rstrip())
        ordered = sorted(factors, key=lambda f: (f.value != "mixed", -abs(f.points)))  # a mixed task list first
        for fs in ordered:
            fact = known[fs.factor]
            claim, consequence = CONSEQUENCES[(fs.factor, fs.value)]
            marker = self._marker(claim, citations)
            if _supports(fs, approach):
                reasons.append(f"{_you(fact)} ({said(fact)}), so {consequence} {marker}".rstrip())
            elif _opposes(fs, approach):
                leans = "fine-tuning" if fs.direction > 0 else "prompt engineering"
                caveats.append(f"{_you(fact)} ({said(fact)}), which on its own favours {leans} {marker}".rstrip())
        if approach == HYBRID and "mixed" not in {f.value for f in factors}:
            urgent = known.get("timeline") is not None and known["timeline"].value == "urgent"
            claim, text = ADVISOR.general_reasons["hybrid_urgent" if urgent else "hybrid_varied"]
            reasons.append(f"{text} {self._marker(claim, citations)}".rstrip())
        if not reasons:
            claim, text = ADVISOR.general_reasons["little_known"]
            reasons.append(f"{text} {self._marker(claim, citations)}".rstrip())
        for old, new in self.corrections:
            caveats.append(f"You first said {old.detail}, then {new.detail}; I used the later answer.")
        unsure = [k for k, f in self.facts.items() if not f.known]
        if unsure:
            caveats.append(f"You were not sure about: {', '.join(unsure)}. Answers there could change this advice.")
        return Recommendation(
            approach, confidence_for(approach, factors, known), tuple(reasons), tuple(citations),
            NEXT_STEPS[approach], tuple(caveats), round(score, 2), factors, _changes(known, approach),
            FOLLOW_UP_QUESTIONS.get(approach, ()),
        )  # fmt: skip

    def _marker(self, claim: str, citations: list[Passage]) -> str:
        passage = self._cite(claim)
        if passage is None:
            return ""
        for i, p in enumerate(citations):
            if p.id == passage.id:
                return f"[{i + 1}]"
        citations.append(passage)
        return f"[{len(citations)}]"

    def _cite(self, claim: str) -> Passage | None:
        """The first retrieved passage that states the claim, cached for the session."""
        if claim not in self._citations:
            spec = CLAIMS[claim]
            hits = self._retrieve(spec.query, 8)
            self._citations[claim] = next((p for p in hits if re.search(spec.support, p.text)), None)
            if self._citations[claim] is None:
                logger.warning("No passage in the index supports %r; that reason goes uncited", claim)
        return self._citations[claim]


def decide(known: dict[str, Fact]) -> tuple[str, float]:
    """Apply the rules in the module docstring to the known facts.

    Returns:
        The approach and the total score.
    """
    score = sum(WEIGHTS[k] * DIRECTIONS[k][f.value] for k, f in known.items())
    value = {k: f.value for k, f in known.items()}
    return _rule(value, score, sum(WEIGHTS[k] for k in known)), score


def _rule(value: dict[str, str], score: float, known_weight: float) -> str:
    if value.get("data") == "none":
        return PROMPT_ENGINEERING
    if known_weight < MIN_KNOWN_SHARE * TOTAL_WEIGHT:
        return ADVISOR.light_approach
    if value.get("tasks") == "mixed":
        return HYBRID if score > -DECISION_THRESHOLD else PROMPT_ENGINEERING
    if score >= DECISION_THRESHOLD:
        if value.get("tasks") == "varied" or value.get("timeline") == "urgent":
            return HYBRID
        return FINE_TUNING
    return PROMPT_ENGINEERING


def _too_little_known(known: dict[str, Fact]) -> bool:
    return sum(WEIGHTS[k] for k in known) < MIN_KNOWN_SHARE * TOTAL_WEIGHT


def _forcing(known: dict[str, Fact]) -> set[str]:
    """Factors whose value alone decides (no labelled data)."""
    return {"data"} if "data" in known and known["data"].value == "none" else set()


#: Factors that trigger rules of their own; the others only move the score.
_SPECIAL = ("data", "tasks", "timeline")


def _outcomes(known: dict[str, Fact], open_factors: list[str]) -> set[str]:
    """Every approach still reachable by some answers (or "not sure") to ``open_factors``.

    Exact: every combination of answers is tried. Plain factors are first collapsed to the distinct
    (weight answered, points) pairs they can add, which keeps it to a few thousand rule calls.
    """
    base = {k: f.value for k, f in known.items()}
    fixed = sum(WEIGHTS[k] * DIRECTIONS[k][v] for k, v in base.items())
    base_weight = sum(WEIGHTS[k] for k in base)
    special = [f for f in open_factors if f in _SPECIAL]
    plain = [f for f in open_factors if f not in _SPECIAL]
    plain_sums = {(0.0, 0.0)}
    for f in plain:
        plain_sums = {(w + dw, p + dp) for w, p in plain_sums
                      for dw, dp in [(0.0, 0.0)] + [(WEIGHTS[f], WEIGHTS[f] * d) for d in DIRECTIONS[f].values()]}  # fmt: skip
    results: set[str] = set()
    for combo in itertools.product(*[(*VALUES[f], UNKNOWN) for f in special]):
        values = dict(base)
        score, weight = fixed, base_weight
        for f, v in zip(special, combo):
            if v != UNKNOWN:
                values[f] = v
                score += WEIGHTS[f] * DIRECTIONS[f][v]
                weight += WEIGHTS[f]
        for w, p in plain_sums:
            results.add(_rule(values, score + p, weight + w))
    return results


def _supports(fs: FactorScore, approach: str) -> bool:
    if approach == PROMPT_ENGINEERING:
        return fs.direction < 0
    if approach == FINE_TUNING:
        return fs.direction > 0
    return fs.direction > 0 or fs.factor == "tasks" or (fs.factor == "timeline" and fs.value == "urgent")


def _opposes(fs: FactorScore, approach: str) -> bool:
    """Whether a fact points away from ``approach`` (a neutral fact points nowhere)."""
    if approach == PROMPT_ENGINEERING:
        return fs.direction > 0
    return fs.direction < 0 and not _supports(fs, approach)


def confidence_for(approach: str, factors: tuple[FactorScore, ...], known: dict[str, Fact] | None = None) -> float:
    """The confidence of the module docstring: the share of the weight not against ``approach`` nor open.

    Args:
        approach: The recommended approach.
        factors: The known facts' scores.
        known: The known facts, to tell whether the open factors could change the approach; without
            them every open factor counts as able to.
    """
    against = sum(f.weight for f in factors if _opposes(f, approach))
    open_factors = [f for f in FACTORS if f not in {fs.factor for fs in factors}]
    settled = known is not None and (not open_factors or _outcomes(known, open_factors) == {approach})
    open_weight = 0.0 if settled else sum(WEIGHTS[f] for f in open_factors)
    return round(max(0.0, (TOTAL_WEIGHT - against - open_weight) / TOTAL_WEIGHT), 2)


def _changes(known: dict[str, Fact], approach: str) -> tuple[str, ...]:
    """Answers to the open questions that would change ``approach``, in words."""
    open_factors = [f for f in FACTORS if f not in known]
    out: list[str] = []
    for factor in open_factors:
        for value in VALUES[factor]:
            trial = {**known, factor: Fact(factor, value, "", "")}
            other = decide(trial)[0]
            if other != approach:
                out.append(f"{ADVISOR.values[factor][value].detail} would make it {ADVISOR.approaches[other]}")
                break
    if out or not open_factors:
        return tuple(out)
    # No single answer is enough: say what the open factors would have to say together.
    for lean in (1, -1):
        trial = dict(known)
        for factor in open_factors:
            value = max(VALUES[factor], key=lambda v, f=factor: lean * DIRECTIONS[f][v])
            trial[factor] = Fact(factor, value, "", "")
        other = decide(trial)[0]
        if other != approach:
            details = ", ".join(ADVISOR.values[f][trial[f].value].detail for f in open_factors)
            return (f"answers to the open questions pointing to {ADVISOR.approaches[other]} ({details}) "
                    f"would make it {ADVISOR.approaches[other]}",)  # fmt: skip
    return ()


def _rule_text(rec: Recommendation) -> str:
    values = {f.factor: f.value for f in rec.factors}
    if values.get("data") == "none":
        return "With no labelled data, fine-tuning is ruled out."
    if sum(f.weight for f in rec.factors) < MIN_KNOWN_SHARE * TOTAL_WEIGHT:
        return "Less than half of the decision's weight is known, so the lighter, reversible option comes first."
    if values.get("tasks") == "mixed" and rec.approach == HYBRID:
        return "A core task plus varied side tasks calls for a hybrid."
    if rec.approach == HYBRID:
        return "The score favours fine-tuning, but varied tasks or an urgent deadline call for prompts too."
    if rec.approach == FINE_TUNING:
        return "The score clears the bar for fine-tuning."
    return "Below the bar, the lighter, quicker option wins."


def _you(fact: Fact) -> str:
    """The fact said back to the user: "You have about 50,000 labelled examples"."""
    spec = ADVISOR.values[fact.factor][fact.value]
    return spec.sentence or f"You have {fact.detail}"


def _noted_text(facts: list[Fact]) -> str:
    if not facts:
        return ""
    parts = [f"{f.detail} ({said(f)})" if f.known else f"{f.factor}: not sure" for f in facts]
    return "Noted: " + "; ".join(parts) + "."
