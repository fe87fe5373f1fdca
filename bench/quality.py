"""Regression check on the old public question set (tuned on; not a quality figure: see bench/blind.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from assistant import Assistant
from bench.baseline import LlamaIndexDefault
from bench.common import Row, offtopic, questions


def retrieval_scores(ranked: Sequence[Sequence[str]], qs: list[dict[str, str]]) -> tuple[float, float, float]:
    """hit@3, MRR@10 and mean characters of the top 3, for ranked passage texts per question."""
    hits = mrr = chars = 0.0
    for q, texts in zip(qs, ranked):
        pos = next((i for i, text in enumerate(texts[:10]) if q["fragment"] in text), None)
        hits += pos is not None and pos < 3
        mrr += 1 / (pos + 1) if pos is not None else 0.0
        chars += sum(len(text) for text in texts[:3])
    return hits / len(qs), mrr / len(qs), chars / len(qs)


def run(bot: Assistant, baseline: LlamaIndexDefault, limit: int | None = None) -> list[Row]:
    """Rows for the retrieval and answer sections."""
    qs = questions(limit)
    off = offtopic(limit)
    ours = retrieval_scores([[p.text for p in bot.retrieve(q["question"], k=10)] for q in qs], qs)
    base = retrieval_scores([baseline.retrieve(q["question"], 10) for q in qs], qs)
    rows = [
        Row("public set (regression check) retrieval", "hit@3", ours[0], base[0], better="higher"),
        Row("public set (regression check) retrieval", "MRR@10", ours[1], base[1], better="higher"),
        Row("public set (regression check) retrieval", "mean chars of top 3", ours[2], base[2], unit="chars"),
    ]

    answers = [bot.ask(q["question"]) for q in qs]
    base_answers = [baseline.ask(q["question"]) for q in qs]
    refused_off = [not bot.ask(q).answerable for q in off]

    def hit_rate(texts: list[str]) -> float:
        return sum(q["fragment"] in text for q, text in zip(qs, texts)) / len(qs)

    mean: Callable[[list[str]], float] = lambda texts: sum(map(len, texts)) / len(texts)  # noqa: E731
    rows += [
        Row(
            "public set (regression check) answers",
            "answer-text hit",
            hit_rate([a.text for a in answers]),
            hit_rate(base_answers),
            target=">= 0.90",
            better="higher",
        ),
        Row(
            "public set (regression check) answers",
            "in-scope refused",
            sum(not a.answerable for a in answers) / len(qs),
            0.0,
            target="<= 0.03",
        ),
        Row(
            "public set (regression check) answers",
            "off-topic refused",
            sum(refused_off) / len(off),
            0.0,
            target=">= 0.90",
            better="higher",
        ),
        Row(
            "public set (regression check) answers",
            "mean answer chars",
            mean([a.text for a in answers]),
            mean(base_answers),
            unit="chars",
        ),
    ]
    return rows
