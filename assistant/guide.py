"""Guided mode: a few questions about your situation, then a cited recommendation.

The first reply describes the situation in the user's own words; `assistant.situation` reads facts
from it. The session then asks, one at a time, only about factors it does not know yet and that
could still change the outcome, and recommends once nothing left could change it (or after
`MAX_QUESTIONS`). At least one question is always asked: when the opening already says everything,
that question is a confirmation of what was understood.

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

Decision, with ``T = DECISION_THRESHOLD`` (1.5):

1. No labelled data: prompt engineering (fine-tuning trains on task-specific data).
2. A core task plus varied side tasks: hybrid, unless the score is at or below ``-T``.
3. Score ``>= T``: fine-tuning; hybrid instead when the tasks are varied or the deadline urgent
   (fine-tune the core task, prompts for the rest or in the meantime).
4. Otherwise: prompt engineering, the lighter and quicker path to start from.

Confidence is ``0.2 + 0.75 × agreement × (0.4 + 0.6 × coverage)``, at most 0.95: *coverage* is the
share of the total weight whose factor the user answered, *agreement* the share of the points (in
absolute value; a core task with side tasks counts its whole weight, for hybrid) that point the chosen
way, 0.5 when no fact points anywhere. "Not sure" lowers coverage; it never blocks a recommendation.
Facts that point the other way become caveats, each still citing its passage.

Every reason cites the corpus: per claim (`CLAIMS`) a query is retrieved once per session and the
first passage that matches the claim's pattern is cited, verbatim, with its offsets.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidQuestionError
from .situation import FACTORS, UNKNOWN, VALUES, Fact, SituationExtractor, is_no, is_yes
from .validation import validate_question

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from .engine import Assistant
    from .retrieval import Passage

logger = logging.getLogger(__name__)

PROMPT_ENGINEERING = "prompt_engineering"
FINE_TUNING = "fine_tuning"
HYBRID = "hybrid"

MAX_QUESTIONS = 7
DECISION_THRESHOLD = 1.5

WEIGHTS: dict[str, float] = {
    "data": 3.0,
    "accuracy": 2.0,
    "tasks": 2.0,
    "timeline": 2.0,
    "compute": 2.0,
    "expertise": 1.5,
    "knowledge": 1.5,
}
DIRECTIONS: dict[str, dict[str, float]] = {
    "data": {"none": -1.0, "few": -0.5, "some": 0.0, "moderate": 0.5, "plenty": 1.0},
    "accuracy": {"high": 1.0, "flexible": -1.0},
    "tasks": {"focused": 1.0, "varied": -1.0, "mixed": 0.0},
    "timeline": {"urgent": -1.0, "weeks": 0.0, "months": 0.5},
    "compute": {"none": -1.0, "limited": -0.5, "available": 1.0},
    "expertise": {"yes": 1.0, "no": -1.0},
    "knowledge": {"needed": 1.0, "not_needed": -1.0},
}

OPENING = "Describe your situation: the task, the labelled data you have, your team, budget and deadline."
OPENING_WHY = "One description usually answers most of my questions, so I only ask about what is missing."
CONFIRM = "confirm"


@dataclass(frozen=True)
class Question:
    """A follow-up question about one factor, with why it matters and quick replies."""

    factor: str
    text: str
    why: str
    options: tuple[str, ...]


QUESTIONS: dict[str, Question] = {
    q.factor: q
    for q in (
        Question(
            "data",
            "How many labelled, task-specific examples do you have (inputs with the right outputs)?",
            "Fine-tuning trains on task-specific labelled data; prompt engineering needs none.",
            ("None", "A few hundred", "A few thousand", "Tens of thousands", "Not sure"),
        ),
        Question(
            "accuracy",
            "How accurate and consistent must the output be?",
            "Fine-tuning gives more consistent accuracy on a specialised task; prompt output varies more.",
            ("Must be highly accurate and consistent", "Some variation is fine", "Not sure"),
        ),
        Question(
            "tasks",
            "Is this one stable task, many tasks that change often, or a core task plus changing side tasks?",
            "Fine-tuned models excel at a set task but need retraining for new ones; prompts adapt quickly.",
            ("One stable task", "Many tasks that change often", "One core task plus changing side tasks", "Not sure"),
        ),
        Question(
            "timeline",
            "When does this need to be working?",
            "Fine-tuning takes weeks or months; prompts can change within hours or days.",
            ("Within days", "In a few weeks", "In a few months or more", "Not sure"),
        ),
        Question(
            "compute",
            "Do you have GPUs or a budget for training runs?",
            "Fine-tuning needs significant computing power; prompt engineering needs very little.",
            ("No GPUs or budget", "A small budget", "Yes, GPUs or cloud budget", "Not sure"),
        ),
        Question(
            "expertise",
            "Does your team have machine-learning expertise (people who have trained models)?",
            "Fine-tuning needs technical expertise in model training; prompts need writing and domain skills.",
            ("Yes, we have an ML team", "No ML expertise", "Not sure"),
        ),
        Question(
            "knowledge",
            "Does the task need knowledge or skills the base model lacks (your jargon, a niche domain, a new format)?",
            "Prompts can only use what the model already knows; fine-tuning can add domain knowledge.",
            ("Yes, specialised knowledge", "No, general knowledge is enough", "Not sure"),
        ),
    )
}


@dataclass(frozen=True)
class Claim:
    """A statement the corpus makes, found by a query and recognised by a pattern in the passage."""

    query: str
    support: str  # regex the cited passage must contain


#: What each reason rests on; a reason cites the first retrieved passage that matches ``support``.
CLAIMS: dict[str, Claim] = {
    "ft_data": Claim(
        "fine-tuning trains the model on custom datasets of task-specific labelled data",
        r"custom (?:data|datasets)|task-specific examples|labell?ed data|substantial datasets",
    ),
    "pe_no_data": Claim(
        "prompt engineering advantages no need for specialized training data", r"No need for specialized training data"
    ),
    "ft_compute": Claim(
        "fine-tuning resource requirements computational power datasets",
        r"computational (?:power|resources)|computing (?:resources|infrastructure)",
    ),
    "pe_compute": Claim(
        "prompt engineering requires minimal computational resources",
        r"[Mm]inimal (?:computational|technical|resource)",
    ),
    "ft_timeline": Claim("fine-tuning implementation timeline weeks or months", r"weeks or months"),
    "pe_timeline": Claim("prompt engineering timeline rapid deployment within hours or days", r"hours or days"),
    "ft_accuracy": Claim(
        "fine-tuning higher accuracy consistent performance specialized tasks",
        r"higher accuracy|consistent, highly accurate",
    ),
    "pe_accuracy": Claim(
        "prompt engineering accuracy varies accept variations in output quality",
        r"variations in output quality|accuracy varies",
    ),
    "ft_expertise": Claim(
        "fine-tuning technical expertise for model training", r"expertise for model training|specialized expertise"
    ),
    "pe_expertise": Claim(
        "prompt engineering requires writing and analytical skills basic understanding of LLM",
        r"writing and analytical skills",
    ),
    "ft_focused": Claim(
        "fine-tuned models excel in specific domains specialized tasks", r"excel in specific domains|specific tasks"
    ),
    "pe_flexible": Claim(
        "prompt engineering flexibility across different use cases quick adjustments retraining for new applications",
        r"greater flexibility|retraining for new applications|changing requirements",
    ),
    "ft_knowledge": Claim(
        "fine tuning acquire domain-specific knowledge; prompt engineering cannot introduce new capabilities",
        r"cannot introduce new capabilities|domain-specific knowledge",
    ),
    "pe_knowledge": Claim(
        "prompt engineering leverages the model's existing knowledge", r"existing knowledge|pre-existing knowledge"
    ),
    "hybrid": Claim(
        "combine both approaches: fine-tuning for core mission-critical tasks, prompts for auxiliary functions",
        r"core, mission-critical tasks|combined to achieve|Hybrid Approaches",
    ),
}

#: For each (factor, value): the claim behind it, and what it means, joined to the fact with "so".
CONSEQUENCES: dict[tuple[str, str], tuple[str, str]] = {
    ("data", "none"): ("pe_no_data", "fine-tuning is out for now, while prompt engineering needs no training data"),
    ("data", "few"): ("pe_no_data", "that is thin for fine-tuning; prompt engineering needs no training data"),
    ("data", "some"): ("ft_data", "fine-tuning may be possible, if the set is large and clean enough"),
    ("data", "moderate"): ("ft_data", "fine-tuning is feasible for a focused task"),
    ("data", "plenty"): ("ft_data", "fine-tuning is feasible"),
    ("accuracy", "high"): ("ft_accuracy", "fine-tuning's more consistent accuracy on a specialised task matters"),
    ("accuracy", "flexible"): ("pe_accuracy", "prompt engineering's more variable output is acceptable"),
    ("tasks", "focused"): ("ft_focused", "a fine-tuned model can specialise in it"),
    ("tasks", "varied"): ("pe_flexible", "prompts' flexibility helps, where a fine-tuned model would need retraining"),
    ("tasks", "mixed"): ("hybrid", "fine-tune the core task and use prompts for the side tasks"),
    ("timeline", "urgent"): ("pe_timeline", "only prompt engineering, changed within hours or days, fits in time"),
    ("timeline", "weeks"): ("ft_timeline", "fine-tuning, which takes weeks or months, would be tight"),
    ("timeline", "months"): ("ft_timeline", "there is time for fine-tuning, which takes weeks or months"),
    ("compute", "none"): ("pe_compute", "prompt engineering, which needs minimal compute, fits"),
    ("compute", "limited"): (
        "pe_compute",
        "lean towards prompts, which need minimal compute (or LoRA-style fine-tuning)",
    ),
    ("compute", "available"): ("ft_compute", "you can meet fine-tuning's demand for computing power"),
    ("expertise", "yes"): ("ft_expertise", "you have the expertise model training requires"),
    ("expertise", "no"): (
        "pe_expertise",
        "prompt engineering, which needs writing and domain skills rather than ML, fits your team",
    ),
    ("knowledge", "needed"): ("ft_knowledge", "prompts alone cannot add it; fine-tuning can"),
    ("knowledge", "not_needed"): ("pe_knowledge", "prompts can draw on the model's existing knowledge"),
}

NEXT_STEPS: dict[str, tuple[str, ...]] = {
    PROMPT_ENGINEERING: (
        "Write a prompt with clear context, a precise task specification and the output format you expect.",
        "Build a small test set and refine the prompt over several rounds against it.",
        "Keep a library of prompts that work, with testing protocols, so results stay consistent.",
    ),
    FINE_TUNING: (
        "Clean, format and label a task-specific dataset that covers edge cases; hold some back for evaluation.",
        "Start with a parameter-efficient method such as LoRA to keep compute down.",
        "Track accuracy and loss during training and watch for overfitting.",
    ),
    HYBRID: (
        "Ship prompts first for every task, so you learn what users need while data is prepared.",
        "Fine-tune a model for the core, mission-critical task once its labelled data is ready.",
        "Keep prompt engineering on top of the fine-tuned model and for side tasks that change often.",
    ),
}


@dataclass(frozen=True)
class FactorScore:
    """How one fact moved the score: ``points = weight × direction``."""

    factor: str
    value: str
    detail: str
    weight: float
    direction: float
    points: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Recommendation:
    """The advice: an approach, how sure, and why, each reason citing a corpus passage by ``[n]``."""

    approach: str  # "prompt_engineering", "fine_tuning" or "hybrid"
    confidence: float  # 0..1
    reasons: tuple[str, ...]  # short bullets, each ending with [n] markers into ``citations``
    citations: tuple[Passage, ...]
    next_steps: tuple[str, ...]
    caveats: tuple[str, ...]
    score: float  # sum of the factor points; positive leans to fine-tuning
    factors: tuple[FactorScore, ...]

    @property
    def label(self) -> str:
        """The approach for people: "prompt engineering", "fine-tuning" or "hybrid"."""
        return {PROMPT_ENGINEERING: "prompt engineering", FINE_TUNING: "fine-tuning", HYBRID: "hybrid"}[self.approach]

    def explain(self) -> str:
        """How the recommendation was reached: the points per factor, the rule applied, the reasons."""
        head = f"I recommend {self.label} (confidence {self.confidence:.0%})."
        lines = [f"{head} Points per factor (+ leans to fine-tuning, - to prompt engineering):"]
        for f in self.factors:
            lines.append(f"- {f.factor}: {f.detail} -> {f.weight:g} x {f.direction:+g} = {f.points:+.1f}")
        lines.append(f"Total {self.score:+.1f}; fine-tuning needs {DECISION_THRESHOLD:+g} or more. {_rule_text(self)}")
        lines.append("Reasons:")
        lines.extend(f"- {r}" for r in self.reasons)
        lines.extend(f"- Caveat: {c}" for c in self.caveats)
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
            "score": self.score,
            "factors": [f.to_dict() for f in self.factors],
        }


@dataclass(frozen=True)
class Step:
    """What the session says back after a reply: a question, or a recommendation, and a message."""

    question: str | None
    why: str | None  # why the question matters
    options: tuple[str, ...]  # quick replies for the question
    factor: str | None  # what the question is about ("confirm" for the confirmation question)
    asked: int  # questions asked so far, this one included
    max_questions: int
    message: str  # what was understood, or the explanation after "why?"
    recommendation: Recommendation | None = None
    facts: tuple[Fact, ...] = ()

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
        }


_WHY = re.compile(
    r"^\s*(?:why|why (?:that|this|so|is that|not)\b.*|explain\b.*|how did you decide\b.*|"
    r"what(?:'s| is) the reasoning\b.*)\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_RESTART = re.compile(
    r"^\s*/?(?:start over|restart|reset|start again|begin again|new session)\s*[.!]*\s*$", re.IGNORECASE
)


class GuideSession:
    """One guided conversation; not shared between users.

    Read ``history`` (turns as role/content dicts) and ``facts`` (what is known, by factor).
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
        self.history: list[dict[str, str]] = []
        self.asked: list[str] = []
        self.corrections: list[tuple[Fact, Fact]] = []
        self.recommendation: Recommendation | None = None
        self._pending: str | None = None  # the factor of the question awaiting an answer
        return Step(OPENING, OPENING_WHY, (), None, 0, self.max_questions, "")

    @property
    def known(self) -> dict[str, Fact]:
        """The facts with a value (not "not sure")."""
        return {k: f for k, f in self.facts.items() if f.known}

    # -- the conversation -------------------------------------------------------------------

    def reply(self, text: str) -> Step:
        """Take the user's next message and say what comes next.

        Args:
            text: The opening description, an answer to the last question, a correction,
                "why?" or "start over".

        Returns:
            The next question, or the recommendation once enough is known.

        Raises:
            InvalidQuestionError: The message is empty, too long or not text.
        """
        try:
            text = validate_question(text, self.max_chars)
        except InvalidQuestionError as exc:
            raise InvalidQuestionError(str(exc).replace("question", "reply", 1)) from None
        if _RESTART.match(text):
            return self.restart()
        if _WHY.match(text):
            return self._explain()
        self.history.append({"role": "user", "content": text})
        step = self._advance(text)
        self.history.append({"role": "assistant", "content": step.question or step.message})
        return step

    def _advance(self, text: str) -> Step:
        expecting = self._pending if self._pending in FACTORS else None
        found = self.extractor.extract(text, expecting)
        confirmed = self._pending == CONFIRM and is_yes(text) and not found
        if self._pending in FACTORS and not found:
            # An answer we cannot read counts as "not sure": move on rather than ask again.
            found = [Fact(self._pending, UNKNOWN, "not sure", text)]
        noted = self._record(found)
        message = _noted_text(noted)
        if not found and not self.asked:
            message = "I could not pick out any facts from that, so let me ask."
        if self._pending == CONFIRM and is_no(text) and not found and len(self.asked) < self.max_questions:
            return self._ask(CONFIRM, message, text="What should I correct?", why="I only use what you tell me.")
        self._pending = None
        if not confirmed and self.recommendation is None:
            factor = self._next_factor()
            if factor is not None:
                return self._ask(factor, message)
        self.recommendation = self._recommend()
        return Step(
            None, None, (), None, len(self.asked), self.max_questions,
            message or "Here is my recommendation.", self.recommendation, tuple(self.facts.values()),
        )  # fmt: skip

    def _record(self, found: list[Fact]) -> list[Fact]:
        noted: list[Fact] = []
        for fact in found:
            old = self.facts.get(fact.factor)
            if old is not None and not fact.known and old.known:
                continue  # "not sure" never erases an answer
            if old is not None and old.known and fact.known and old.value != fact.value:
                self.corrections.append((old, fact))
                logger.info("Fact %s changed from %s to %s", fact.factor, old.value, fact.value)
            self.facts[fact.factor] = fact
            noted.append(fact)
        return noted

    def _ask(self, factor: str, message: str, text: str | None = None, why: str | None = None) -> Step:
        self.asked.append(factor)
        self._pending = factor
        if factor == CONFIRM:
            understood = "; ".join(f.detail for f in self.facts.values() if f.known) or "nothing definite yet"
            q = Question(CONFIRM, text or f"Did I get this right: {understood}?", why or
                         "Everything I recommend rests on these facts, so please correct anything I misread.",
                         ("Yes, that's right", "No, let me correct something"))  # fmt: skip
        else:
            q = QUESTIONS[factor]
        return Step(q.text, q.why, q.options, factor, len(self.asked), self.max_questions, message,
                    None, tuple(self.facts.values()))  # fmt: skip

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
        if self.recommendation is not None:
            message = self.recommendation.explain()
            return Step(None, None, (), None, len(self.asked), self.max_questions, message,
                        self.recommendation, tuple(self.facts.values()))  # fmt: skip
        if self._pending is not None:
            q = self._current_question()
            return Step(q.text, q.why, q.options, q.factor, len(self.asked), self.max_questions, q.why,
                        None, tuple(self.facts.values()))  # fmt: skip
        return Step(OPENING, OPENING_WHY, (), None, 0, self.max_questions, OPENING_WHY)

    def _current_question(self) -> Question:
        if self._pending == CONFIRM:
            return Question(CONFIRM, "Did I get this right?", "Everything I recommend rests on these facts.",
                            ("Yes, that's right", "No, let me correct something"))  # fmt: skip
        assert self._pending is not None
        return QUESTIONS[self._pending]

    # -- the recommendation -----------------------------------------------------------------

    def _recommend(self) -> Recommendation:
        known = self.known
        approach, score = decide(known)
        factors = tuple(
            FactorScore(f.factor, f.value, f.detail, WEIGHTS[f.factor], DIRECTIONS[f.factor][f.value],
                        round(WEIGHTS[f.factor] * DIRECTIONS[f.factor][f.value], 2))
            for f in (known[k] for k in FACTORS if k in known)
        )  # fmt: skip
        citations: list[Passage] = []
        reasons: list[str] = []
        caveats: list[str] = []
        ordered = sorted(factors, key=lambda f: (f.value != "mixed", -abs(f.points)))  # a mixed task list first
        for fs in ordered:
            fact = known[fs.factor]
            claim, consequence = CONSEQUENCES[(fs.factor, fs.value)]
            marker = self._marker(claim, citations)
            if _supports(fs, approach):
                reasons.append(f"{_you(fact)}, so {consequence} {marker}".rstrip())
            else:
                leans = "fine-tuning" if fs.direction > 0 else "prompt engineering"
                caveats.append(f"{_you(fact)}, which on its own favours {leans} {marker}".rstrip())
        if approach == HYBRID and "mixed" not in {f.value for f in factors}:
            marker = self._marker("hybrid", citations)
            if known.get("timeline") and known["timeline"].value == "urgent":
                why = "so ship prompts now and fine-tune the core task once its training is done"
            else:
                why = "so fine-tune the core task and keep prompts for the tasks that change"
            reasons.append(
                f"Most of your facts favour fine-tuning but not all of your needs do, {why} {marker}".rstrip()
            )
        if not reasons:
            marker = self._marker("pe_compute", citations)
            reasons.append(f"Little is known about your situation, so start with the lightest option {marker}".rstrip())
        for old, new in self.corrections:
            caveats.append(f"You first said {old.detail}, then {new.detail}; I used the later answer.")
        unsure = [QUESTIONS[k].factor for k, f in self.facts.items() if not f.known]
        if unsure:
            caveats.append(f"You were not sure about: {', '.join(unsure)}. Answers there could change this advice.")
        confidence = confidence_for(approach, factors)
        return Recommendation(
            approach, confidence, tuple(reasons), tuple(citations), NEXT_STEPS[approach], tuple(caveats),
            round(score, 2), factors,
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
    return _rule(value, score), score


def _rule(value: dict[str, str], score: float) -> str:
    if value.get("data") == "none":
        return PROMPT_ENGINEERING
    if value.get("tasks") == "mixed":
        return HYBRID if score > -DECISION_THRESHOLD else PROMPT_ENGINEERING
    if score >= DECISION_THRESHOLD:
        if value.get("tasks") == "varied" or value.get("timeline") == "urgent":
            return HYBRID
        return FINE_TUNING
    return PROMPT_ENGINEERING


def _outcomes(known: dict[str, Fact], open_factors: list[str]) -> set[str]:
    """Every approach still reachable by some answers (or "not sure") to ``open_factors``."""
    base = {k: f.value for k, f in known.items()}
    fixed = sum(WEIGHTS[k] * DIRECTIONS[k][v] for k, v in base.items())
    # data, tasks and timeline trigger rules of their own: enumerate them; the rest only move the score.
    special = [f for f in open_factors if f in ("data", "tasks", "timeline")]
    plain = [f for f in open_factors if f not in special]
    low = sum(min(0.0, WEIGHTS[f] * min(DIRECTIONS[f].values())) for f in plain)
    high = sum(max(0.0, WEIGHTS[f] * max(DIRECTIONS[f].values())) for f in plain)
    results: set[str] = set()
    for combo in itertools.product(*[(*VALUES[f], UNKNOWN) for f in special]):
        values = dict(base)
        score = fixed
        for f, v in zip(special, combo):
            if v != UNKNOWN:
                values[f] = v
                score += WEIGHTS[f] * DIRECTIONS[f][v]
        probes = {score + low, score + high}
        for t in (DECISION_THRESHOLD, -DECISION_THRESHOLD):
            for s in (t, t - 1e-6):
                if score + low <= s <= score + high:
                    probes.add(s)
        results.update(_rule(values, s) for s in probes)
    return results


def _supports(fs: FactorScore, approach: str) -> bool:
    if approach == PROMPT_ENGINEERING:
        return fs.direction < 0
    if approach == FINE_TUNING:
        return fs.direction > 0
    return fs.direction > 0 or fs.factor == "tasks" or (fs.factor == "timeline" and fs.value == "urgent")


def confidence_for(approach: str, factors: tuple[FactorScore, ...]) -> float:
    """The confidence formula of the module docstring."""
    coverage = sum(f.weight for f in factors) / sum(WEIGHTS.values())
    total = sum(_pull(f) for f in factors)
    agree = sum(_pull(f) for f in factors if _supports(f, approach))
    agreement = agree / total if total else 0.5
    return round(min(0.95, 0.2 + 0.75 * agreement * (0.4 + 0.6 * coverage)), 2)


def _pull(f: FactorScore) -> float:
    """How hard a fact pulls: its points, or its whole weight for a core task with side tasks."""
    return f.weight if (f.factor, f.value) == ("tasks", "mixed") else abs(f.points)


def _rule_text(rec: Recommendation) -> str:
    values = {f.factor: f.value for f in rec.factors}
    if values.get("data") == "none":
        return "With no labelled data, fine-tuning is ruled out."
    if values.get("tasks") == "mixed" and rec.approach == HYBRID:
        return "A core task plus varied side tasks calls for a hybrid."
    if rec.approach == HYBRID:
        return "The score favours fine-tuning, but varied tasks or an urgent deadline call for prompts too."
    if rec.approach == FINE_TUNING:
        return "The score clears the bar for fine-tuning."
    return "Below the bar, the lighter, quicker option wins."


_SENTENCES: dict[tuple[str, str], str] = {
    ("accuracy", "high"): "You need highly accurate, consistent output",
    ("accuracy", "flexible"): "Some variation in the output is acceptable to you",
    ("tasks", "varied"): "Your tasks are many or change often",
    ("expertise", "yes"): "Your team has machine-learning expertise",
    ("expertise", "no"): "Your team has no machine-learning expertise",
    ("knowledge", "needed"): "The task needs knowledge the base model lacks",
    ("knowledge", "not_needed"): "The base model's general knowledge covers the task",
}


def _you(fact: Fact) -> str:
    """The fact said back to the user: "You have about 50,000 labelled examples"."""
    return _SENTENCES.get((fact.factor, fact.value), f"You have {fact.detail}")


def _noted_text(facts: list[Fact]) -> str:
    if not facts:
        return ""
    parts = [f.detail if f.known else f"{f.factor}: not sure" for f in facts]
    return "Noted: " + "; ".join(parts) + "."
