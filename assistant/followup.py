"""Follow-up questions: check the chat history and rewrite a follow-up into a standalone question.

Without an LLM the rewrite is rule-based and carries the previous subject forward:

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

from .validation import Message

#: The subjects the corpus talks about, as (canonical name, pattern), most specific first.
SUBJECTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "both approaches",
            r"\b(?:both(?: approaches| methods| techniques)?|the two(?: approaches| methods)?|a hybrid(?: approach)?|combining them)\b",
        ),
        ("prompt engineering", r"\bprompt(?:ing| engineering| design|s)?\b"),
        ("LoRA", r"\b(?:lora|low-rank adaptation)\b"),
        ("fine-tuning", r"\bfine[- ]?tun(?:ing|e|ed)\b|\bfinetun(?:ing|e|ed)\b"),
        ("hyperparameters", r"\bhyper-?parameters?\b"),
        ("overfitting", r"\boverfitting\b"),
        ("dropout", r"\bdropout\b"),
        ("regularization", r"\bregulari[sz]ation\b"),
        ("cross-validation", r"\bcross-?validation\b"),
    )
)

_PRONOUN = re.compile(r"\b(its|it|this|that|they|them|their|these|those)\b", re.IGNORECASE)
_ELLIPSIS = re.compile(
    r"^\s*(?:and|but|also|so)?\s*(?:what|how)\s+about\s+(?P<rest>.+?)\s*\??\s*$|^\s*(?:and|but|also)\s+(?P<rest2>.+?)\s*\??\s*$",
    re.IGNORECASE,
)
_QUESTION_WORD = re.compile(
    r"^\s*(?:what|how|why|when|which|who|where|is|are|does|do|can|should|could|would|will)\b", re.IGNORECASE
)


def subjects_in(text: str) -> list[str]:
    """The corpus subjects a text names, in the order of `SUBJECTS`."""
    found = []
    for name, pattern in SUBJECTS:
        if pattern.search(text):
            found.append(name)
    if "both approaches" in found:
        return ["both approaches"]
    return found


def rewrite_followup(question: str, history: Sequence[Message]) -> str:
    """Rewrite a follow-up question into a standalone one, using earlier user turns.

    Args:
        question: The new question, already validated.
        history: Earlier messages, oldest first (see `assistant.validation.validate_history`).

    Returns:
        The standalone question; ``question`` unchanged when it needs no rewrite.
    """
    previous = ""
    for message in history:
        if message["role"] == "user" and message["content"].strip():
            previous = _rewrite_one(message["content"].strip(), previous)
    return _rewrite_one(question, previous)


def _rewrite_one(question: str, previous: str) -> str:
    if not previous:
        return question
    prev_subjects = subjects_in(previous)
    own = subjects_in(question)
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
    if own or not prev_subjects:
        return question
    subject = _join(prev_subjects)
    match = _PRONOUN.search(question)
    if match:
        word = match.group(1).lower()
        replacement = f"{subject}'s" if word in ("its", "their") else subject
        return question[: match.start()] + replacement + question[match.end() :]
    if _QUESTION_WORD.match(question) and len(question.split()) <= 8:
        # A short question with no subject at all ("How long does implementation take?").
        return f"{question.rstrip(' ?')} for {subject}?"
    return question


def _swap_subject(previous: str, prev_subjects: list[str], new: str) -> str:
    old_name = prev_subjects[0]
    pattern = dict(SUBJECTS)[old_name]
    swapped, count = pattern.subn(new, previous, count=1)
    return swapped if count else f"{previous.rstrip(' ?')} for {new}?"


def _join(subjects: list[str]) -> str:
    return subjects[0] if len(subjects) == 1 else f"{subjects[0]} and {subjects[1]}"
