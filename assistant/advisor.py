"""The guided advisor's domain tables, loaded from ``advisor.yaml`` shipped beside this module.

The factors, their values and weights, the questions, the corpus claims behind each reason, the
next steps and the similarity examples are data, not code: `assistant.situation` and
`assistant.guide` are generic machinery over them. The file is read and checked once, at import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

ADVISOR_FILE = "advisor.yaml"


@dataclass(frozen=True)
class Question:
    """A follow-up question about one factor: why it matters, a longer explanation, and quick replies."""

    factor: str
    text: str
    why: str
    options: tuple[str, ...]
    explain: str = ""


@dataclass(frozen=True)
class Claim:
    """A statement the corpus makes, found by a query and recognised by a pattern in the passage."""

    query: str
    support: str  # regex the cited passage must contain


@dataclass(frozen=True)
class ValueSpec:
    """One value of a factor: where it points, the fact in words, and the reason it gives."""

    direction: float  # -1 towards prompt engineering .. +1 towards fine-tuning
    detail: str
    claim: str
    so: str
    sentence: str | None = None  # the fact said back to the user, when "You have <detail>" does not fit


@dataclass(frozen=True)
class Advisor:
    """Everything domain-specific the guided dialog needs."""

    approaches: dict[str, str]
    light_approach: str
    decision_threshold: float
    min_known_share: float
    max_questions: int
    opening: str
    opening_why: str
    weights: dict[str, float]
    values: dict[str, dict[str, ValueSpec]]
    questions: dict[str, Question]
    claims: dict[str, Claim]
    general_reasons: dict[str, tuple[str, str]]  # name -> (claim, text)
    next_steps: dict[str, tuple[str, ...]]
    follow_up_questions: dict[str, tuple[str, ...]]
    offer_guide: re.Pattern[str]
    prototypes: dict[tuple[str, str], tuple[str, ...]]
    similarity_threshold: float
    similarity_margin: float


def _parse(raw: dict[str, Any]) -> Advisor:
    factors = raw["factors"]
    values = {
        f: {str(v): ValueSpec(float(s["direction"]), s["detail"], s["claim"], s["so"], s.get("sentence"))
            for v, s in spec["values"].items()}
        for f, spec in factors.items()
    }  # fmt: skip
    questions = {
        f: Question(f, spec["question"], spec["why"], tuple(spec["options"]), spec.get("explain", ""))
        for f, spec in factors.items()
    }
    claims = {k: Claim(c["query"], c["support"]) for k, c in raw["claims"].items()}
    advisor = Advisor(
        approaches=dict(raw["approaches"]),
        light_approach=raw["light_approach"],
        decision_threshold=float(raw["decision_threshold"]),
        min_known_share=float(raw["min_known_share"]),
        max_questions=int(raw["max_questions"]),
        opening=raw["opening"]["question"],
        opening_why=raw["opening"]["why"],
        weights={f: float(spec["weight"]) for f, spec in factors.items()},
        values=values,
        questions=questions,
        claims=claims,
        general_reasons={k: (r["claim"], r["text"]) for k, r in raw["general_reasons"].items()},
        next_steps={k: tuple(v) for k, v in raw["next_steps"].items()},
        follow_up_questions={k: tuple(v) for k, v in raw["follow_up_questions"].items()},
        offer_guide=re.compile(raw["offer_guide_pattern"], re.IGNORECASE),
        prototypes={(f, str(v)): tuple(s) for f, vs in raw["prototypes"].items() for v, s in vs.items()},
        similarity_threshold=float(raw["similarity_threshold"]),
        similarity_margin=float(raw["similarity_margin"]),
    )
    _check(advisor)
    return advisor


def _check(a: Advisor) -> None:
    """Fail at import, naming the entry, rather than mid-dialog."""
    problems: list[str] = []
    for factor, specs in a.values.items():
        for value, spec in specs.items():
            if spec.claim not in a.claims:
                problems.append(f"factors.{factor}.values.{value}.claim {spec.claim!r} is not under claims")
    for name, (claim, _) in a.general_reasons.items():
        if claim not in a.claims:
            problems.append(f"general_reasons.{name}.claim {claim!r} is not under claims")
    for key in (*a.next_steps, *a.follow_up_questions, a.light_approach):
        if key not in a.approaches:
            problems.append(f"{key!r} is not one of the approaches {sorted(a.approaches)}")
    for f, v in a.prototypes:
        if v not in a.values.get(f, {}):
            problems.append(f"prototypes.{f}.{v} is not a value of that factor")
    if problems:
        raise ValueError(f"{ADVISOR_FILE} is inconsistent: " + "; ".join(problems))


@cache
def load() -> Advisor:
    """The advisor tables shipped with the package (read once)."""
    text = resources.files(__package__).joinpath(ADVISOR_FILE).read_text(encoding="utf-8")
    return _parse(yaml.safe_load(text))
