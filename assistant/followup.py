"""Follow-up questions: check the chat history and rewrite a follow-up into a standalone question.

Without an LLM the rewrite is rule-based and carries the previous subject forward. A subject
is the longest run of words in a question that the corpus itself uses (`subjects_in`), so the
rules work on any corpus:

- an elliptical question ("And prompt engineering?", "What about LoRA?") takes the previous
  question and swaps its subject for the new one;
- a question whose subject is a pronoun ("How long does it take?", "What are its limitations?")
  gets the previous subject in place of the pronoun;
- an elliptical question without a subject ("What about the cost?") gets "of <subject>" appended.

A question that names a subject of its own is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .profile import CorpusProfile
from .validation import Message

_PRONOUN = re.compile(r"\b(its|it|this|that|they|them|their|these|those)\b", re.IGNORECASE)
_ELLIPSIS = re.compile(
    r"^\s*(?:and|but|also|so)?\s*(?:what|how)\s+about\s+(?P<rest>.+?)\s*\??\s*$|^\s*(?:and|but|also)\s+(?P<rest2>.+?)\s*\??\s*$",
    re.IGNORECASE,
)
_QUESTION_WORD = re.compile(
    r"^\s*(?:what|how|why|when|which|who|where|is|are|does|do|can|should|could|would|will)\b", re.IGNORECASE
)


def subjects_in(text: str, profile: CorpusProfile | None) -> list[str]:
    """The subject a text names: its longest run of words the corpus uses (none without a profile).

    "What are the limitations of prompt engineering?" names "prompt engineering" when the corpus
    uses both words; nothing in this module knows what any corpus is about.
    """
    if profile is None:
        return []
    runs: list[list[str]] = [[]]
    for word in re.findall(r"[\w][\w'-]*", text):
        terms = profile.terms(word)
        if terms and all(profile.known(t) == t for t in terms):
            runs[-1].append(word)
        elif runs[-1]:
            runs.append([])
    best = max(runs, key=len)  # the first of the longest
    return [" ".join(best)] if best else []


def rewrite_followup(question: str, history: Sequence[Message], profile: CorpusProfile | None = None) -> str:
    """Rewrite a follow-up question into a standalone one, using earlier user turns.

    Args:
        question: The new question, already validated.
        history: Earlier messages, oldest first (see `assistant.validation.validate_history`).
        profile: The corpus's vocabulary, which tells what a question's subject is.

    Returns:
        The standalone question; ``question`` unchanged when it needs no rewrite.
    """
    previous = ""
    for message in history:
        if message["role"] == "user" and message["content"].strip():
            previous = _rewrite_one(message["content"].strip(), previous, profile)
    return _rewrite_one(question, previous, profile)


def _rewrite_one(question: str, previous: str, profile: CorpusProfile | None) -> str:
    if not previous:
        return question
    prev_subjects = subjects_in(previous, profile)
    own = [s for s in subjects_in(question, profile) if not _PRONOUN.fullmatch(s)]
    ellipsis = _ELLIPSIS.match(question)
    if ellipsis:
        rest = (ellipsis.group("rest") or ellipsis.group("rest2") or "").strip()
        if own and prev_subjects and not _QUESTION_WORD.match(rest):
            # "And prompt engineering?": the previous question, about the new subject.
            return _swap_subject(previous, prev_subjects, own[0])
        if not own and prev_subjects:
            return f"What about {rest} of {_join(prev_subjects)}?"
        if own:
            return question
    if not prev_subjects:
        return question
    subject = _join(prev_subjects)
    match = _PRONOUN.search(question)
    if own and not match:
        return question
    if match:
        word = match.group(1).lower()
        replacement = f"{subject}'s" if word in ("its", "their") else subject
        return question[: match.start()] + replacement + question[match.end() :]
    if _QUESTION_WORD.match(question) and len(question.split()) <= 8:
        # A short question with no subject at all ("How long does implementation take?").
        return f"{question.rstrip(' ?')} for {subject}?"
    return question


def _swap_subject(previous: str, prev_subjects: list[str], new: str) -> str:
    swapped, count = re.subn(re.escape(prev_subjects[0]), new, previous, count=1, flags=re.IGNORECASE)
    return swapped if count else f"{previous.rstrip(' ?')} for {new}?"


def _join(subjects: list[str]) -> str:
    return subjects[0] if len(subjects) == 1 else f"{subjects[0]} and {subjects[1]}"
