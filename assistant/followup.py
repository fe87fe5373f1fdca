"""Follow-up questions: whether a question leans on the turns before it, and what to search for then.

Without an LLM, a follow-up is searched together with the question it follows: "How long does it
take?" after "What is fine-tuning?" is searched as "What is fine-tuning? How long does it take?".
The embedding of the two together lands on the passage about the earlier subject's duration, and
no rule needs to know what a subject is, so this works on any corpus. Whether the follow-up still
belongs to the corpus is the refusal policy's question (`RefusalPolicy.follows_up`): an off-topic
follow-up pulls the combined question further from the corpus than a follow-up of the same
length that asks nothing new (`neutral_like`) does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .validation import Message

#: How many earlier user turns a follow-up is searched with, at most.
CONTEXT_TURNS = 3

#: Openings and words that point back at an earlier turn (English, any corpus).
_CONNECTIVE = re.compile(r"^\W*(?:and|but|so|ok(?:ay)?|now|also|then|what about|how about)\b", re.IGNORECASE)
_REFERENCE = re.compile(
    r"\b(?:it|its|it's|they|them|their|this|that|these|those|one|ones|each|both|either|the two|the other)\b"
    # "which" with no noun of its own: "Which should I try first?", "which is cheaper"
    r"|\bwhich(?=\s+(?:is|are|was|were|should|would|will|shall|can|could|may|might|must|do|does|did|has|have)\b)",
    re.IGNORECASE,
)
#: "it" that stands for no earlier subject: "Is it possible to …", "it's safe to …" (English).
_EXPLETIVE_IT = re.compile(
    r"\b(?:(is|was|isn't|would|will)\s+it|it(?:'s|’s|\s+is|\s+was))\s+(\w+\s+(?:to|that)\b)", re.I
)
#: "this week", "that morning": a time, not something said before (English).
_DEICTIC_TIME = re.compile(
    r"\b(?:this|that|these|those)\s+(?:(?:week|weekend|morning|afternoon|evening|night|day|month|quarter|year)s?"
    r"|time|season|spring|summer|autumn|fall|winter)\b",
    re.IGNORECASE,
)
#: A question this short ("Give me an example.") cannot stand on its own.
SHORT_WORDS = 4


def _names_something_earlier(question: str) -> bool:
    """Whether a pronoun or "each", "both", ... in the question stands for something said before."""
    return bool(_REFERENCE.search(_EXPLETIVE_IT.sub(r"\1 \2", _DEICTIC_TIME.sub("", question))))


def refers_back(question: str) -> bool:
    """Whether a question points at an earlier turn: a pronoun or a connective opening ("And ...?")."""
    return bool(_CONNECTIVE.match(question)) or _names_something_earlier(question)


def stands_alone(question: str) -> bool:
    """Whether a question that opens like a follow-up ("ok and how do I restore a file?") names
    everything it asks about: no pronoun points back, and it is longer than `SHORT_WORDS` without
    its opening. Answerable as typed, such a question is a change of topic, not an ellipsis."""
    rest = _CONNECTIVE.sub("", question, count=1)
    return not _names_something_earlier(question) and len(rest.split()) > SHORT_WORDS


def may_follow(question: str) -> bool:
    """Whether a question may be a follow-up: it points back, or is too short to stand alone."""
    return refers_back(question) or len(question.split()) <= SHORT_WORDS


def context_of(history: Sequence[Message], rewrite: Callable[[str, str], str | None] | None = None) -> str | None:
    """What a follow-up is searched with: the last user turn, with the turns it leaned on.

    Args:
        history: Earlier messages, oldest first (see `assistant.validation.validate_history`).
        rewrite: Resolves a bare follow-up turn against the context before it ("and prompting?"
            after "What resources does fine-tuning need?"), or returns None to keep it as is.

    Returns:
        The context text, or None when the history holds no user turn.
    """
    turns = [m["content"].strip() for m in history if m["role"] == "user" and m["content"].strip()]
    context: str | None = None
    for turn in turns[-CONTEXT_TURNS:]:
        rewritten = rewrite(turn, context) if rewrite is not None and context else None
        context = rewritten or (f"{context} {turn}" if context and refers_back(turn) else turn)
    return context


def with_context(question: str, context: str) -> str:
    """The text a follow-up is searched as."""
    return f"{context} {question}"


_FILLER = "please tell me more about that in some more detail thanks".split()


def neutral_like(question: str) -> str:
    """A follow-up that asks nothing new, as many words long as ``question``.

    Appending any words to a question moves its embedding; comparing a real follow-up with this
    one tells a follow-up that moves it elsewhere (off-topic) from one that only adds length.
    """
    n = max(1, len(question.split()))
    return " ".join((_FILLER * (n // len(_FILLER) + 1))[:n])


# -- bare follow-ups: "And the disadvantages?" ----------------------------------------------

_WORD = re.compile(r"\w[\w'’-]*")
#: A follow-up of a connective and at most this many words is a bare phrase ("and in Manchester?").
BARE_WORDS = 4
#: The longest run of words of an earlier question a bare phrase may stand in for.
SPAN_WORDS = 3
#: How near in meaning (cosine) a bare phrase and the words it stands in for must be. On the dev
#: dialogs of both blind sets the right runs scored 0.58-0.82 ("grandparent"/"parent",
#: "Manchester"/"London", "disadvantages"/"advantages") and the nearest wrong ones at most 0.46
#: ("accuracy"/"fine-tuning", "prompting"/"need"): MiniLM tells word-level kin, not two subjects of
#: one kind apart, so below this the follow-up is searched with the turns before it instead.
MIN_SIMILARITY = 0.5


def bare_phrase(question: str, stopwords: frozenset[str]) -> str | None:
    """The content words of a follow-up that is only a connective and a phrase, else None.

    "And the disadvantages?" gives "disadvantages", "ok and prompting?" gives "prompting", "what
    about LoRA then" gives "LoRA"; "so which of the two is faster?" is a question of its own words
    and gives None.
    """
    rest, connected = question, False
    while match := _CONNECTIVE.match(rest):  # "ok and ...", "and what about ..."
        rest, connected = rest[match.end() :].lstrip(" ,.;:!-"), True
    words = _WORD.findall(rest)
    if not connected or not words or len(words) > BARE_WORDS:
        return None
    content = [w for w in words if w.lower() not in stopwords]
    return " ".join(content) or None


Embed = Callable[[Sequence[str]], Sequence[Sequence[float]]]


def substitute(
    phrase: str,
    turn: str,
    stopwords: frozenset[str],
    embed: Embed,
    subject: Callable[[str], bool] | None = None,
) -> str | None:
    """``turn`` with the run of its words that ``phrase`` stands in for replaced by ``phrase``.

    "What are the advantages of prompting?" with "disadvantages" gives "What are the
    disadvantages of prompting?": the ellipsis asks the earlier question again about something
    else. Candidate runs are one to `SPAN_WORDS` words with no stopword. When ``phrase`` names one
    of the corpus's subjects (``subject``: its titles' words), it stands in for the run that names
    another ("What resources does fine-tuning need?" with "prompting"); otherwise for the run
    nearest in meaning (the embedding's cosine), if it is near enough (`MIN_SIMILARITY`).

    Returns:
        The rewritten question, or None when no run qualifies.
    """
    import numpy as np

    tokens = [(m.start(), m.end(), m.group().lower() in stopwords) for m in _WORD.finditer(turn)]
    spans: list[tuple[int, int]] = []
    for i in range(len(tokens)):
        for j in range(i, min(i + SPAN_WORDS, len(tokens))):
            if tokens[j][2]:
                break
            spans.append((tokens[i][0], tokens[j][1]))
    floor = MIN_SIMILARITY
    if subject is not None and subject(phrase):
        named = [(a, b) for a, b in spans if subject(turn[a:b]) and turn[a:b].lower() != phrase.lower()]
        # Whole names only: "prompt engineering", not "engineering" alone.
        named = [s for s in named if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in named)]
        if named:
            spans, floor = named, -1.0
    if not spans:
        return None
    vectors = np.asarray(embed([phrase] + [turn[a:b] for a, b in spans]), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    similarities = vectors[1:] @ vectors[0]
    best = int(np.argmax(similarities))
    if similarities[best] < floor:
        return None
    a, b = spans[best]
    return turn[:a] + phrase + turn[b:]
