"""Facts about the user's situation, read from what they type: rules first, embeddings for paraphrases.

Seven factors decide between prompt engineering and fine-tuning (see `assistant.guide`). Each
message is split into clauses; each clause is matched against per-factor cue patterns, and the
clause's negation, quantities, deadlines and "not sure" decide the value. A clause no rule
understands is compared with example sentences by embedding similarity, when an embedder is given.
A short answer ("yes", "about 2,000", "next week", "not sure") applies to the factor just asked about.
With an LLM configured, the LLM reads the facts first and the rules fill in whatever it missed or
when it fails.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from .advisor import load as load_advisor

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"
#: How a fact was read: a rule matched the user's words, or a similar example sentence, or the LLM.
RULE, SIMILARITY, LLM_READ = "rule", "similarity", "llm"

_ADVISOR = load_advisor()

#: The values each factor can take, besides ``unknown`` ("not sure"); from advisor.yaml.
VALUES: dict[str, tuple[str, ...]] = {f: tuple(specs) for f, specs in _ADVISOR.values.items()}

FACTORS: tuple[str, ...] = tuple(VALUES)


@dataclass(frozen=True)
class Fact:
    """One thing the user told us: ``value`` is one of `VALUES[factor]` or ``unknown``."""

    factor: str
    value: str
    detail: str  # the fact in words, e.g. "about 50,000 labelled examples"
    quote: str  # the user's words it came from, verbatim
    quantity: float | None = None  # labelled examples, or days until the deadline
    source: str = RULE  # how it was read: RULE, SIMILARITY or LLM

    @property
    def known(self) -> bool:
        """Whether the user gave an answer rather than "not sure"."""
        return self.value != UNKNOWN

    @property
    def tentative(self) -> bool:
        """Whether the fact was read by similarity or an LLM, not a rule: it counts only once confirmed."""
        return self.source != RULE

    def confirmed(self) -> Fact:
        """The same fact, confirmed by the user, so it counts like one read by a rule."""
        return replace(self, source=RULE)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


# -- shared patterns --------------------------------------------------------------------------

_NEG = (
    r"\b(?:no|not|don'?t|do not|doesn'?t|does not|didn'?t|haven'?t|hasn'?t|have not|has not|without|"
    r"lack(?:s|ing)?|zero|none|never|nobody|no one|can'?t|cannot|won'?t|isn'?t|aren'?t)\b"
)
_UNSURE = re.compile(
    r"\b(?:not sure|unsure|no idea|not certain|uncertain|no clue|hard to say|can'?t say|dunno|idk|"
    r"unknown|(?:i|we) (?:don'?t|do not) know|don'?t know yet|not known)\b|"
    r"^\s*(?:don'?t|do not) know\b|^\s*maybe\b|^\s*\?+\s*$",
    re.IGNORECASE,
)
_YES = re.compile(
    r"^\s*(?:yes|yeah|yep|yup|sure|we do|we have|correct|right|absolutely|definitely|of course|indeed|"
    r"that'?s right|it does|it is|they are|true)\b",
    re.IGNORECASE,
)
_NO = re.compile(
    r"^\s*(?:no|nope|nah|not really|we don'?t|we do not|none|not at all|it doesn'?t|false)\b", re.IGNORECASE
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_METHOD_CLAIM = re.compile(
    r"\b(?:fine[- ]?tun\w*|prompt(?: engineering|ing)?)\b[^.?!]*\b(?:needs?|requires?|takes?|gives?|costs?|is|are)\b",
    re.IGNORECASE,
)
_ABOUT_SPEAKER = re.compile(r"\b(?:we|we'?re|we'?ve|our|us|i have|i'?ve got)\b", re.IGNORECASE)
_CLAUSE_SPLIT = re.compile(r"[.;!?\n]+|,\s+|\s+(?:but|however|although|though|whereas|while|and)\s+", re.IGNORECASE)

_WORD_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a couple": 2,
    "couple of": 2, "a few": 3, "few": 3, "several": 4,
}  # fmt: skip
_NUM = (
    r"(?:\d+(?:[.,]\d+)*(?:\s?[km]\b|\s?(?:thousand|million)\b)?|"
    + "|".join(sorted((re.escape(w) for w in _WORD_NUMBERS), key=len, reverse=True))
    + r")"
)
_QTY_PHRASES: tuple[tuple[str, float], ...] = (
    (r"tens of thousands", 30_000),
    (r"hundreds of thousands", 300_000),
    (r"millions", 2_000_000),
    (r"(?:a )?couple(?: of)? thousand", 2_000),
    (r"(?:a )?couple(?: of)? hundred", 200),
    (r"(?:a )?few thousand", 3_000),
    (r"(?:a )?few hundred", 300),
    (r"thousands", 5_000),
    (r"hundreds", 300),
    (r"dozens", 50),
    (r"(?:a )?handful(?: of)?", 10),
    (r"(?:a )?few dozen", 40),
)
_DATA_NOUN = (
    r"(?:label(?:l)?ed|annotated|tagged|training|examples?|samples?|data ?sets?|data(?!\s*(?:scien|platform|engineer|team|cent))|tickets|records|rows|pairs|"
    r"documents|conversations|emails|transcripts|reviews|items|instances)"
)
_DATA_CUE = re.compile(
    r"\b(?:label(?:l)?ed|annotated|training data|training examples?|data ?sets?|examples?|data(?!\s*(?:scien|platform|engineer|team|cent)))\b",
    re.IGNORECASE,
)


def parse_number(text: str) -> float | None:
    """The quantity in a phrase like ``50k``, ``about 2,000``, ``a few hundred`` or ``none``."""
    t = text.lower().strip()
    for pattern, value in _QTY_PHRASES:
        if re.search(rf"\b{pattern}\b", t):
            return value
    if re.search(r"\b(?:none|zero|nothing|no)\b", t) and not re.search(r"\d", t):
        return 0
    m = re.search(r"(\d+(?:[.,]\d+)*)\s?(k|m|thousand|million)?\b", t)
    if m:
        digits = m.group(1)
        # "50,000" and "1.000" group thousands; "2.5" is a decimal.
        if re.fullmatch(r"\d{1,3}(?:[,.]\d{3})+", digits):
            value = float(re.sub(r"[,.]", "", digits))
        else:
            value = float(digits.replace(",", "."))
        unit = (m.group(2) or "").lower()
        return value * {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}.get(unit, 1)
    for word, value in sorted(_WORD_NUMBERS.items(), key=lambda kv: -len(kv[0])):
        if re.search(rf"\b{re.escape(word)}\b", t) and word not in ("a", "an"):
            return value
    return None


def _negated(clause: str, cue_start: int) -> bool:
    before = clause[:cue_start]
    after = clause[cue_start:]
    return bool(re.search(_NEG + r"(?:\W+\w+){0,5}\W*$", before, re.IGNORECASE)) or bool(
        re.search(r"\b(?:none|zero|nil|unavailable|not available|isn'?t|aren'?t|no)\s*$", after, re.IGNORECASE)
    )


#: Each value in words, for facts that come from similarity or the LLM rather than a rule.
DETAILS: dict[tuple[str, str], str] = {
    (f, v): spec.detail for f, specs in _ADVISOR.values.items() for v, spec in specs.items()
}

# -- per-factor rules ---------------------------------------------------------------------------


def _rx(*parts: str) -> re.Pattern[str]:
    """One case-insensitive pattern from pieces, so long alternations stay readable."""
    return re.compile("".join(parts), re.IGNORECASE)


def _fact(factor: str, value: str, quote: str, quantity: float | None = None) -> Fact:
    return Fact(factor, value, DETAILS[(factor, value)], quote, quantity)


def _yes_no(clause: str, expecting: bool, factor: str, yes: str, no: str) -> Fact | None:
    """A bare yes or no, read as the answer to the question just asked about ``factor``."""
    if expecting and _YES.search(clause):
        return _fact(factor, yes, clause)
    if expecting and _NO.search(clause):
        return _fact(factor, no, clause)
    return None


def _data_level(n: float) -> str:
    if n <= 0:
        return "none"
    if n < 1_000:
        return "few"
    if n < 10_000:
        return "moderate"
    return "plenty"


def _count_fact(n: float, quote: str, approx: bool) -> Fact:
    if n == 0:
        return Fact("data", "none", "no labelled examples", quote, 0)
    return Fact("data", _data_level(n), f"{'about ' if approx else ''}{int(n):,} labelled examples", quote, n)


_DATA_QTY = _rx(
    r"((?:about|around|roughly|approximately|approx\.?|~|over|more than|nearly|almost|some|maybe|only|just)?\s*",
    rf"(?:{'|'.join(p for p, _ in _QTY_PHRASES)}|{_NUM}))\s+(?:[\w-]+\s+){{0,3}}?{_DATA_NOUN}\b",
)
_APPROX = _rx(r"about|around|roughly|approx|~|some|maybe|few|hundreds|thousands|dozens|tens")
_NOT_A_COUNT = _rx(r"\b(?:hours?|days?|weeks?|months?|years?|people|engineers|gpus?)\b")
_REQUIREMENT = _rx(r"\b(?:need|needs|require|requires|demands)\b")
_LOTS = _rx(r"\b(?:lots|plenty|large|huge|massive|tons|loads|big|substantial|a lot)\b")
_LITTLE = _rx(r"\b(?:little|small|tiny|limited|scarce|barely|hardly|very few|not much|not many)\b")
_LABELLED = _rx(r"\b(?:label(?:l)?ed|annotated|training)\b")
_POSSESS = _rx(r"\b(?:have|got|own|collected|sitting on|there is|there are|we've)\b")


def _data(clause: str, expecting: bool) -> Fact | None:
    qty = _DATA_QTY.search(clause)
    if qty and not _NOT_A_COUNT.search(qty.group(0)):
        n = parse_number(qty.group(1))
        if n is not None:
            if n > 0 and _negated(clause, qty.start()):
                return None
            return _count_fact(n, clause, bool(_APPROX.search(qty.group(1))))
    cue = _DATA_CUE.search(clause)
    if cue is None and not expecting:
        return None
    if cue and _REQUIREMENT.search(clause[: cue.start()]):
        return None  # "fine-tuning needs data" states a requirement, not a fact about the user
    if _negated(clause, cue.start() if cue else 0) or (expecting and _NO.search(clause)):
        return _fact("data", "none", clause, 0)
    if _LOTS.search(clause):
        return _fact("data", "plenty", clause)
    if _LITTLE.search(clause):
        return _fact("data", "few", clause)
    if expecting:
        n = parse_number(clause)
        if n is not None and not _NOT_A_COUNT.search(clause):
            return _count_fact(n, clause, approx=n > 0)
        if _YES.search(clause):
            return _fact("data", "some", clause)
    if cue and _LABELLED.search(clause) and _POSSESS.search(clause):
        return _fact("data", "some", clause)
    return None


_COMPUTE_CUE = _rx(
    r"\b(?:gpus?|compute|computing|hardware|cloud|budget|money|funding|infrastructure|cluster|",
    r"a100s?|h100s?|tpus?|servers?)\b",
)
_SMALL = _rx(r"\b(?:tight|limited|small|modest|little|shoestring|low|constrained|minimal|cheap|some)\b")
_HAVE = _rx(r"\b(?:have|got|own|access|plenty|lots|big|large|generous|ample|enough|available|rent|afford|yes)\b")
_BARE_HARDWARE = _rx(r"(?:\w+\s+){0,2}(?:gpus?|a100s?|h100s?|tpus?|a cluster|cluster|cloud credits)")


def _compute(clause: str, expecting: bool) -> Fact | None:
    cue = _COMPUTE_CUE.search(clause)
    if cue is None:
        return _yes_no(clause, expecting, "compute", "available", "none")
    if _REQUIREMENT.search(clause[: cue.start()]) and not re.search(r"\bwe\b", clause, re.IGNORECASE):
        return None
    negated = _negated(clause, cue.start())
    if _SMALL.search(clause) and not negated:
        return _fact("compute", "limited", clause)
    if negated or re.search(r"\b(?:none|zero)\b", clause, re.IGNORECASE):
        return _fact("compute", "none", clause)
    if _HAVE.search(clause) or _BARE_HARDWARE.fullmatch(clause.strip()):
        return _fact("compute", "available", clause)
    return None


#: A deadline this many days away or fewer is urgent; from ``MONTHS_DAYS`` on there are months.
URGENT_DAYS = 14
MONTHS_DAYS = 60

_UNITS = {"hour": 1 / 24, "day": 1, "week": 7, "month": 30, "quarter": 90, "year": 365}
_FREQUENCY = re.compile(r"\b(?:every|each|per|a|once a)\s+(?:hour|day|week|month|quarter|year)\b")
_DEADLINE_WORD = re.compile(
    r"\b(?:by|in|within|deadline|due|ship|launch|live|ready|need|have|got|timeline|until|before|next|give|"
    r"takes?|only|about|roughly|around)\b"
)
_NOW = re.compile(r"\b(?:asap|right away|immediately|urgent(?:ly)?|yesterday|today|tonight|tomorrow)\b")
_THIS_WEEK = re.compile(
    r"\b(?:by|before|until|on)\s+(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|the weekend)\b|"
    r"\bthis week\b|\bend of (?:the )?week\b"
)
_NO_RUSH = re.compile(
    r"\b(?:no (?:hard |fixed |real )?(?:deadline|rush|hurry)|not in a hurry|no time pressure|plenty of time|"
    r"take our time|long[- ]term)\b"
)
_NEXT_PERIOD = re.compile(r"\b(?:next|end of(?: the| this)?|this)\s+(week|month|quarter|year)\b")
_DURATION = re.compile(
    rf"((?:{'|'.join(p for p, _ in _QTY_PHRASES)}|{_NUM})?)\s*[- ]?(hour|day|week|month|quarter|year)s?\b"
)


def _days(clause: str, expecting: bool) -> tuple[float, str] | None:
    """Days until the deadline in ``clause``, and the deadline in words."""
    t = clause.lower()
    if _FREQUENCY.search(t) and not re.search(r"\b(?:by|in|within|deadline|due|ship|launch|next)\b", t):
        return None  # "tasks change every week" is a frequency, not a deadline
    if m := _NOW.search(t):
        urgent = m.group(0) not in ("today", "tonight", "tomorrow")
        return 1, "an urgent deadline" if urgent else f"a deadline of {m.group(0)}"
    if _THIS_WEEK.search(t):
        return 5, "a deadline this week"
    if _NO_RUSH.search(t):
        return 180, "no pressing deadline"
    if m := _NEXT_PERIOD.search(t):
        return _UNITS[m.group(1)], f"a deadline {m.group(0)}"
    m = _DURATION.search(t)
    if m and (expecting or _DEADLINE_WORD.search(t)):
        if not m.group(1).strip():
            return _UNITS[m.group(2)] * 3, f"a deadline within {m.group(2)}s"
        n = parse_number(m.group(1)) or 1
        return n * _UNITS[m.group(2)], f"a deadline in {m.group(0).strip()}"
    return None


def _timeline(clause: str, expecting: bool) -> Fact | None:
    got = _days(clause, expecting)
    if got is None:
        return None
    days, detail = got
    value = "urgent" if days <= URGENT_DAYS else "weeks" if days < MONTHS_DAYS else "months"
    return Fact("timeline", value, detail, clause, days)


_ACC_CUE = _rx(
    r"\b(?:accura(?:cy|te)|consisten(?:t|cy)|precis(?:e|ion)|reliab(?:le|ility)|errors?|mistakes?|",
    r"mission[- ]critical|critical|regulated|compliance|high[- ]stakes|low[- ]stakes|variation|varies|vary|",
    r"good enough|perfect|differences?|rough(?:ly)?|\d{2}(?:\.\d+)?\s?%)",
)
_FLEX = _rx(
    r"\b(?:variation|vary|varies|good enough|roughly|rough|approximate|tolerat\w*|low[- ]stakes|forgiving|",
    r"(?:doesn'?t|does not|don'?t|do not) (?:need|have) to be|needn'?t|not (?:critical|crucial|important)|",
    r"(?:isn'?t|is not|not) (?:a )?(?:big deal|priority|that important)|(?:doesn'?t|does not) matter(?: much)?|",
    r"(?<!not )(?<!n't )(?:fine(?![- ]?tun)|ok|okay|alright|acceptable))\b",
)
_STRICT = _rx(
    r"\b(?:costly|expensive|unacceptable|not acceptable|isn'?t acceptable|can'?t afford|cannot afford|no room|",
    r"zero tolerance|must|has to|have to|needs? to be|(?<!not )critical|high[- ]stakes|regulated|compliance)\b",
)
_ABOUT_METHODS = _rx(r"\b(?:fine[- ]tun\w+|prompt\w*)\b")
_ABOUT_US = _rx(r"\b(?:we|our|must|needs? to)\b")


def _accuracy(clause: str, expecting: bool) -> Fact | None:
    cue = _ACC_CUE.search(clause)
    if cue is None:
        return _yes_no(clause, expecting, "accuracy", "high", "flexible")
    if _ABOUT_METHODS.search(clause[: cue.start()]) and not _ABOUT_US.search(clause):
        return None  # a statement about the methods, not the user's requirement
    if _FLEX.search(clause):
        return _fact("accuracy", "flexible", clause)
    if _STRICT.search(clause) or not _negated(clause, cue.start()):
        return _fact("accuracy", "high", clause)
    if re.match(r"(?:errors?|mistakes?)$", cue.group(0), re.IGNORECASE):
        return _fact("accuracy", "high", clause)  # "no mistakes allowed": negating errors is strictness
    return _fact("accuracy", "flexible", clause)  # "accuracy isn't a big deal"


_EXPERTISE_CUE = _rx(
    r"\b(?:ml|machine[- ]learning|data scien\w*|ai team|ai engineers?|mlops|model training|trained models?|",
    r"researchers?|deep learning|nlp engineers?)\b",
)
_ONLY_DEVELOPERS = _rx(
    r"\b(?:only|just|all)\s+(?:\w+\s+)?(?:web|software|backend|front[- ]?end|full[- ]?stack|app)\s+",
    r"(?:dev\w*|engineers?|people)\b|\bno one (?:here )?(?:knows|has (?:done|trained))\b",
)
_ABOUT_TEAM = _rx(
    r"\b(?:we|our|team|us|i|have|has|got|hire|staff|engineers?|scientists?|experience|expertise|yes|no)\b"
)
_LITTLE_EXPERIENCE = _rx(r"\b(?:little|limited|zero)\s+(?:\w+\s+)?(?:experience|expertise)\b")


def _expertise(clause: str, expecting: bool) -> Fact | None:
    if _ONLY_DEVELOPERS.search(clause):
        return _fact("expertise", "no", clause)
    cue = _EXPERTISE_CUE.search(clause)
    if cue is None:
        return _yes_no(clause, expecting, "expertise", "yes", "no")
    if not _ABOUT_TEAM.search(clause):
        return None
    if _negated(clause, cue.start()) or _LITTLE_EXPERIENCE.search(clause):
        return _fact("expertise", "no", clause)
    return _fact("expertise", "yes", clause)


_TASK_CUE = _rx(r"\b(?:tasks?|use[- ]cases?|requirements?|workflows?|jobs?|features?|things?|domains?|products?)\b")
_CORE_TASK = _rx(r"\b(?:core|main|primary|central|key|critical)\s+(?:\w+\s+){0,2}?(?:task|use[- ]case|job|workflow)\b")
_SIDE_TASKS = _rx(
    r"\b(?:side|auxiliary|secondary|other|smaller|minor|misc\w*|various|many|lots of|plus|also)\b",
    r"[^.]*\b(?:tasks?|use[- ]cases?|things|jobs)\b",
)
_BOTH = _rx(r"\b(?:both|core task plus|mix|mixture|combination)\b")
_CHANGING = _rx(
    r"\b(?:chang\w+|evolv\w+|shift\w*|moving target|every (?:day|week|month)|each (?:day|week|month)|",
    r"new (?:tasks|use[- ]cases) (?:all the time|often|constantly)|many (?:different )?|lots of (?:different )?|",
    r"various|variety|diverse|different (?:tasks|use[- ]cases)|dozens of|all sorts)\b",
)
_STABLE = _rx(
    r"\b(?:one|single|just one|only one|a single|same|stable|fixed|well[- ]defined|narrow|",
    r"won'?t change|doesn'?t change|never changes?|rarely changes?)\b",
)
_NOT_CHANGING = _rx(r"\b(?:won'?t|doesn'?t|don'?t|never|rarely|not)\s+chang")
_CHANGING_NEEDS = _rx(r"\b(?:chang\w+|evolv\w+)\b.*\b(?:requirements?|needs|what we do|priorities)\b|",
                      r"\b(?:requirements?|needs|what we do|priorities)\b.*\b(?:chang\w+|evolv\w+)\b")  # fmt: skip


def _tasks(clause: str, expecting: bool) -> Fact | None:
    if expecting and _BOTH.search(clause):
        return _fact("tasks", "mixed", clause)
    if _TASK_CUE.search(clause) is None and not expecting:
        return _fact("tasks", "varied", clause) if _CHANGING_NEEDS.search(clause) else None
    stable = _STABLE.search(clause)
    if _CHANGING.search(clause) and not (stable and _NOT_CHANGING.search(clause)):
        return _fact("tasks", "varied", clause)
    if stable:
        return _fact("tasks", "focused", clause)
    return None


_KNOW_NEEDED = _rx(
    r"\b(?:jargon|terminology|proprietary|internal (?:codes|terms|knowledge|data|docs)|domain[- ]specific|",
    r"specialized|specialised|niche|in[- ]house (?:jargon|terms|terminology|codes|knowledge|language)|our own (?:codes|terms|format|style|language)|",
    r"new (?:capabilit\w+|skills?|format)|(?:domain|specialist|expert) knowledge|",
    r"(?:model|it|gpt|llm|chatgpt)\s+(?:doesn'?t|does not|can'?t|cannot|won'?t)\s+",
    r"(?:know|understand|handle|do|speak))\b",
)
_KNOW_NOT = _rx(
    r"\b(?:general knowledge|common knowledge|generic|everyday|off[- ]the[- ]shelf|out of the box|",
    r"(?:model|it|gpt|llm|chatgpt)\s+already\s+(?:knows|handles|does|understands)|",
    r"(?:model|gpt|llm|chatgpt)\s+(?:knows|handles|understands)\s+(?:it|this|that|them|well|fine)|",
    r"(?:doesn'?t|does not|don'?t|no)\s+(?:need|require)\s+(?:any\s+)?",
    r"(?:special|specialised|specialized|domain|new|extra)\b)",
)
_MODEL_LACKS = _rx(r"\b(?:doesn'?t|does not|can'?t|cannot)\s+(?:know|understand|handle)")


def _knowledge(clause: str, expecting: bool) -> Fact | None:
    if _KNOW_NOT.search(clause):
        return _fact("knowledge", "not_needed", clause)
    if m := _KNOW_NEEDED.search(clause):
        # "we don't need domain knowledge" negates the need; "the model doesn't know X" states it.
        if _negated(clause, m.start()) and not _MODEL_LACKS.search(clause):
            return _fact("knowledge", "not_needed", clause)
        return _fact("knowledge", "needed", clause)
    return _yes_no(clause, expecting, "knowledge", "needed", "not_needed")


_RULES: dict[str, Callable[[str, bool], Fact | None]] = {
    "data": _data,
    "accuracy": _accuracy,
    "tasks": _tasks,
    "timeline": _timeline,
    "compute": _compute,
    "expertise": _expertise,
    "knowledge": _knowledge,
}

_TOPIC = {
    "data": _DATA_CUE,
    "compute": _COMPUTE_CUE,
    "timeline": _rx(r"\b(?:deadline|timeline|time ?frame|when|ship|launch|hours?|days?|weeks?|months?)\b"),
    "accuracy": _ACC_CUE,
    "expertise": _EXPERTISE_CUE,
    "tasks": _TASK_CUE,
    "knowledge": _rx(r"\b(?:knowledge|jargon|terminology|capabilit\w+|domain)\b"),
}

#: Example sentences per (factor, value); a clause no rule reads is matched to them by similarity.
PROTOTYPES: dict[tuple[str, str], tuple[str, ...]] = _ADVISOR.prototypes
#: Minimum cosine similarity, and lead over the best other value of the same factor, to accept a match
#: (measured on bench/guide_facts.jsonl; see advisor.yaml).
SIMILARITY_THRESHOLD = _ADVISOR.similarity_threshold
SIMILARITY_MARGIN = _ADVISOR.similarity_margin
#: Embeddings barely see negation, so a match counts only if clause and example agree on it.
_POLARITY = re.compile(_NEG + r"|\b(?:nobody|never|impossible|nothing|unable)\b", re.IGNORECASE)


class SituationExtractor:
    """Reads facts from a message: rules, then embedding similarity for what the rules miss."""

    def __init__(self, embed: Callable[[str], Sequence[float]] | None = None, llm: LLM | None = None) -> None:
        """Args:
        embed: Turns a clause into a vector (``Embedder.embed_query``); without it only rules run.
        llm: A LlamaIndex LLM that reads the facts first; the rules fill in what it misses or fails on.
        """
        self._embed = embed
        self._llm = llm
        self._prototypes: list[tuple[str, str, str, Any]] | None = None

    def extract(self, message: str, expecting: str | None = None) -> list[Fact]:
        """The facts stated in ``message``, in the order stated; later ones win on the same factor.

        Args:
            message: What the user typed.
            expecting: The factor of the question just asked, which short answers apply to.

        Returns:
            Facts, at most one per factor; "not sure" gives a fact whose value is ``unknown``.
        """
        ruled = self._rules(message, expecting)
        if self._llm is None:
            return ruled
        read = self._ask_llm(message, expecting)
        return read + [f for f in ruled if f.factor not in {g.factor for g in read}]

    def _rules(self, message: str, expecting: str | None) -> list[Fact]:
        found: dict[str, Fact] = {}
        factors = list(FACTORS)
        # A core task and its side tasks are often told in different clauses: read the whole message.
        if _CORE_TASK.search(message) and _SIDE_TASKS.search(message):
            found["tasks"] = _fact("tasks", "mixed", message)
            factors.remove("tasks")
        # "Fine-tuning needs lots of data and GPUs" is about the method, not a fact about the user.
        kept = [s for s in _SENTENCE.split(message) if not (_METHOD_CLAIM.search(s) and not _ABOUT_SPEAKER.search(s))]
        clauses = [c.strip() for s in kept for c in _CLAUSE_SPLIT.split(s) if c and c.strip()]
        for clause in clauses:
            hit = False
            for factor in factors:
                fact = _RULES[factor](clause, expecting == factor)
                if fact is None and expecting == factor and _UNSURE.search(clause):
                    fact = Fact(factor, UNKNOWN, "not sure", clause)
                if fact is not None:
                    if (
                        _UNSURE.search(clause)
                        and _TOPIC[factor].search(clause)
                        and fact.value != UNKNOWN
                        and fact.quantity is None  # "maybe a couple hundred examples" is a quantity
                        and not re.search(r"\d", clause)
                    ):
                        fact = Fact(factor, UNKNOWN, "not sure", clause)
                    found.pop(factor, None)
                    found[factor] = fact
                    hit = True
            if not hit:
                for factor, topic in _TOPIC.items():
                    if _UNSURE.search(clause) and topic.search(clause) and factor not in found:
                        found[factor] = Fact(factor, UNKNOWN, "not sure", clause)
                        hit = True
            if not hit and self._embed is not None and len(clause.split()) >= 3:
                fact = self._similar(clause)
                if fact is not None and fact.factor not in found:
                    found[fact.factor] = fact
        return list(found.values())

    def _ask_llm(self, message: str, expecting: str | None) -> list[Fact]:
        """The facts the LLM reads from ``message``; none (and a warning) when it fails or answers nonsense."""
        assert self._llm is not None
        allowed = "\n".join(f"- {f}: {', '.join(v)}" for f, v in VALUES.items())
        prompt = LLM_PROMPT.format(
            allowed=allowed,
            expecting=f"The user is answering a question about: {expecting}." if expecting else "",
            message=message,
        )
        try:
            raw = self._llm.complete(prompt).text
            match = re.search(r"\{.*\}", raw, re.DOTALL)
            data = json.loads(match.group(0)) if match else None
        except Exception as exc:
            logger.warning("The LLM could not read the reply (%s); using the rules instead", exc)
            return []
        if not isinstance(data, dict):
            logger.warning("The LLM did not return a JSON object; using the rules instead")
            return []
        facts: list[Fact] = []
        for factor, value in data.items():
            if factor not in VALUES or not isinstance(value, str):
                continue
            if value == UNKNOWN:
                facts.append(Fact(factor, UNKNOWN, "not sure", message, source=LLM_READ))
            elif value in VALUES[factor]:
                count = data.get("data_count") if factor == "data" else None
                if isinstance(count, (int, float)) and count >= 0:
                    facts.append(replace(_count_fact(float(count), message, approx=True), source=LLM_READ))
                else:
                    facts.append(Fact(factor, value, DETAILS[(factor, value)], message, source=LLM_READ))
        return facts

    def _similar(self, clause: str) -> Fact | None:
        import numpy as np

        assert self._embed is not None
        if self._prototypes is None:
            self._prototypes = [
                (f, v, s, _unit(np.asarray(self._embed(s), dtype=np.float32)))
                for (f, v), sentences in PROTOTYPES.items()
                for s in sentences
            ]
        q = _unit(np.asarray(self._embed(clause), dtype=np.float32))
        best: dict[tuple[str, str], tuple[float, str]] = {}
        for f, v, sentence, vec in self._prototypes:
            score = float(vec @ q)
            if score > best.get((f, v), (-1.0, ""))[0]:
                best[(f, v)] = (score, sentence)
        (factor, value), (score, sentence) = max(best.items(), key=lambda kv: kv[1][0])
        rival = max((s for (f, v), (s, _) in best.items() if f == factor and v != value), default=-1.0)
        logger.debug("Similarity match %s=%s (%.2f, rival %.2f) for %r", factor, value, score, rival, clause)
        if score < SIMILARITY_THRESHOLD or score - rival < SIMILARITY_MARGIN:
            return None
        if bool(_POLARITY.search(clause)) != bool(_POLARITY.search(sentence)):
            return None
        return Fact(factor, value, DETAILS[(factor, value)], clause, source=SIMILARITY)


LLM_PROMPT = """Read facts about a team's situation from their message, for choosing between prompt \
engineering and fine-tuning. Reply with one JSON object and nothing else. Include only the factors the \
message speaks about, each with one of its allowed values, or "unknown" if they say they are not sure:
{allowed}
When the message gives a number of labelled examples, also add "data_count": <number>.
{expecting}
Message: {message}
JSON:"""


def _unit(v: Any) -> Any:
    import numpy as np

    return v / (np.linalg.norm(v) or 1.0)


def is_yes(text: str) -> bool:
    """Whether a reply is a plain yes."""
    return bool(_YES.search(text))


def is_no(text: str) -> bool:
    """Whether a reply is a plain no."""
    return bool(_NO.search(text))
