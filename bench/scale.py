"""Scale: synthetic corpora of growing size, each built and queried in a fresh process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import CORPUS, Row, run_child
from bench.synthetic import corpus_sentences, write_corpus


def run(
    sizes: list[int],
    work: Path,
    n_questions: int,
    log: Callable[[str], None] = print,
    save: Callable[[list[Row], dict[str, Any]], None] | None = None,
) -> tuple[list[Row], dict[str, Any]]:
    """Build, measure and query ours and the LlamaIndex default at each size.

    Returns:
        Table rows, and the series per pipeline for the plot and ``results.json``.
    """
    sentences = corpus_sentences(CORPUS)
    series: dict[str, list[dict[str, Any]]] = {"ours": [], "llamaindex": []}
    rows: list[Row] = []
    for size in sizes:
        corpus = write_corpus(work / f"synthetic-{size}", size, sentences)
        try:
            ours, base = _measure(size, corpus, work, n_questions, log)
        except RuntimeError as exc:  # keep the sizes already measured
            log(f"  scale {size:,} failed: {exc}")
            series.setdefault("failed", []).append({"size": size, "error": str(exc)[-500:]})
            continue
        series["ours"].append({"size": size, **ours})
        series["llamaindex"].append({"size": size, **base})
        label = f"{size:,} chunks"
        rows += [
            Row("scale", f"{label}: build", ours["build_seconds"], base["build_seconds"], unit="s"),
            Row(
                "scale",
                f"{label}: index on disk (without the model's ONNX export)",
                ours["disk_mb"],
                base["disk_mb"],
                unit="MiB",
            ),
            Row("scale", f"{label}: peak memory", ours["peak_mb"], base["peak_mb"], unit="MiB"),
            Row("scale", f"{label}: cold start", ours["cold_start_seconds"], base["cold_start_seconds"], unit="s"),
            Row(
                "scale",
                f"{label}: ask p50",
                ours["ask_p50_ms"],
                base["ask_p50_ms"],
                unit="ms",
                target="<= 60 at 100k" if size >= 100_000 else "",
            ),
        ]
        if save:
            save(rows, series)
    return rows, series


def _measure(
    size: int, corpus: Path, work: Path, n_questions: int, log: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    index, persist = work / f"index-{size}", work / f"persist-{size}"
    log(f"  scale {size:,}: ours")
    ours = run_child("scale-ours", str(corpus), str(index), str(n_questions))
    ours["cold_start_seconds"] = run_child("cold-ours", str(time.time()), str(corpus), str(index))["seconds"]
    log(f"  scale {size:,}: LlamaIndex default")
    base = run_child("scale-baseline", str(corpus), str(persist), str(n_questions))
    base["cold_start_seconds"] = run_child("cold-baseline", str(time.time()), str(persist))["seconds"]
    return ours, base
