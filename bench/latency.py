"""Warm latency in this process, and cold starts in fresh processes, each beside its floor."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from assistant import Assistant
from bench.baseline import LlamaIndexDefault
from bench.common import Row, p50, p95, questions, run_child, timed_ms


def warm(bot: Assistant, baseline: LlamaIndexDefault, limit: int | None = None) -> list[Row]:
    """Warm retrieve/ask p50 and p95, and one raw MiniLM query embedding as the floor."""
    qs = [q["question"] for q in questions(limit)]
    for q in qs:  # warm-up: caches filled, pages in memory
        bot.ask(q)
        baseline.ask(q)
    model = bot.embedder.model._model  # the raw SentenceTransformer behind LlamaIndex's wrapper
    floor = p50(timed_ms(lambda q: model.encode([q]), qs))
    ours_r, base_r = timed_ms(lambda q: bot.retrieve(q, 5), qs), timed_ms(lambda q: baseline.retrieve(q, 5), qs)
    ours_a, base_a = timed_ms(bot.ask, qs), timed_ms(baseline.ask, qs)
    floor_name = "raw query embedding"
    return [
        Row("latency", "warm retrieve p50", p50(ours_r), p50(base_r), floor, floor_name, "ms"),
        Row("latency", "warm retrieve p95", p95(ours_r), p95(base_r), floor, floor_name, "ms"),
        Row("latency", "warm ask p50", p50(ours_a), p50(base_a), floor, floor_name, "ms", "<= 25"),
        Row("latency", "warm ask p95", p95(ours_a), p95(base_a), floor, floor_name, "ms"),
    ]


def cold(corpus: Path, index: Path, persist: Path, repeats: int = 3) -> list[Row]:
    """New process → open → first answer, median of ``repeats``; beside it a raw MiniLM query
    embedding in a new process (the floor) and an eager import of everything the package uses."""

    def median_of(task: str, *args: str) -> float:
        return statistics.median(run_child(task, str(time.time()), *args)["seconds"] for _ in range(repeats))

    ours = median_of("cold-ours", str(corpus), str(index))
    base = median_of("cold-baseline", str(persist))
    floor = median_of("cold-floor")
    eager = median_of("eager-imports")
    return [
        Row("latency", "cold start to first answer", ours, base, floor, "raw MiniLM, new process", "s"),
        Row(
            "latency",
            "cold start to first answer",
            ours,
            base,
            eager,
            "eager import of all deps",
            "s",
            target="well under eager",
        ),
    ]
