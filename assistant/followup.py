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
from collections.abc import Sequence

from .validation import Message

#: How many earlier user turns a follow-up is searched with, at most.
CONTEXT_TURNS = 3

#: Openings and words that point back at an earlier turn (English, any corpus).
_CONNECTIVE = re.compile(r"^\W*(?:and|but|so|ok(?:ay)?|now|also|then|what about|how about)\b", re.IGNORECASE)
_REFERENCE = re.compile(
    r"\b(?:it|its|it's|they|them|their|this|that|these|those|one|ones|each|both|either|the two|the other)\b",
    re.IGNORECASE,
)
#: A question this short ("Give me an example.") cannot stand on its own.
SHORT_WORDS = 4


def refers_back(question: str) -> bool:
    """Whether a question points at an earlier turn: a pronoun or a connective opening ("And ...?")."""
    return bool(_CONNECTIVE.match(question) or _REFERENCE.search(question))


def may_follow(question: str) -> bool:
    """Whether a question may be a follow-up: it points back, or is too short to stand alone."""
    return refers_back(question) or len(question.split()) <= SHORT_WORDS


def context_of(history: Sequence[Message]) -> str | None:
    """What a follow-up is searched with: the last user turn, with the turns it leaned on.

    Args:
        history: Earlier messages, oldest first (see `assistant.validation.validate_history`).

    Returns:
        The context text, or None when the history holds no user turn.
    """
    turns = [m["content"].strip() for m in history if m["role"] == "user" and m["content"].strip()]
    context: str | None = None
    for turn in turns[-CONTEXT_TURNS:]:
        context = f"{context} {turn}" if context and refers_back(turn) else turn
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
