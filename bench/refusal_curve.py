"""The refusal trade-off: in-scope questions refused against off-topic questions answered.

Sweeps `RefusalPolicy.margin` (the bar for questions that name words the corpus does not use) with
the other values as shipped, on both halves of every blind set, and plots the curves to
`bench/blind/refusal_curve.png`. The shipped point is marked. Only aggregate figures are printed.

Example usage:

    python -m bench.refusal_curve
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.blind import BLIND, CORPORA, HALVES, half_of

MARGINS = [round(0.02 * i, 2) for i in range(-2, 16)]


def _refused(
    policy: Any, items: list[dict[str, Any]], found: list[Any], implied: list[bool], profile: Any, background: Any
) -> float:
    """The share of ``items`` the engine refuses with ``policy``, given the passages found for each
    and whether each, asked first, is taken as about the corpus's subject (the margin does not
    change that: `AnswerEngine.about_the_corpus`)."""
    refused = [
        not policy.answerable(q["question"], ps, profile, background) and not about
        for q, ps, about in zip(items, found, implied)
    ]
    return sum(refused) / len(items)


def main() -> int:
    from assistant import Assistant, Settings
    from assistant.embeddings import Embedder
    from assistant.refusal import RefusalPolicy

    shipped = RefusalPolicy()
    embedder = Embedder.from_defaults(Settings())
    work = Path(tempfile.mkdtemp(prefix="curve-"))
    curves: dict[str, list[tuple[float, float, float]]] = {}
    try:
        for corpus in CORPORA:
            bot = Assistant.open(
                Settings(corpus_dir=corpus.corpus_dir, index_dir=work / corpus.name), embedder=embedder
            )
            engine, retriever = bot.answers, bot.retriever
            background, profile = engine.background(), retriever.profile
            for half in HALVES:
                sets = half_of(corpus, half)
                found = {
                    kind: [retriever.retrieve(q["question"], bot.settings.top_k) for q in sets[kind]]
                    for kind in ("inscope", "offtopic")
                }
                implied = {
                    kind: [engine.about_the_corpus(q["question"]) is not None for q in sets[kind]]
                    for kind in ("inscope", "offtopic")
                }
                points = []
                for margin in MARGINS:
                    policy = dataclasses.replace(shipped, margin=margin)

                    refused = {
                        kind: _refused(policy, sets[kind], found[kind], implied[kind], profile, background)
                        for kind in ("inscope", "offtopic")
                    }
                    points.append((margin, refused["inscope"], 1 - refused["offtopic"]))
                curves[f"{corpus.name} {half}"] = points
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("margin  " + "  ".join(f"{name + ' (in refused / off answered)':>40}" for name in curves))
    for i, margin in enumerate(MARGINS):
        mark = " <- shipped" if margin == shipped.margin else ""
        cells = "  ".join(f"{p[i][1]:>31.3f} / {p[i][2]:.3f}" for p in curves.values())
        print(f"{margin:+.2f}  {cells}{mark}")
    (BLIND / "refusal_curve.json").write_text(json.dumps(curves, indent=1), encoding="utf-8")
    plot(curves, shipped.margin)
    return 0


def plot(curves: dict[str, list[tuple[float, float, float]]], shipped: float) -> None:
    """Draw ``curves`` (name -> (margin, in-scope refused, off-topic answered) points) to
    refusal_curve.png: one colour per corpus, its dev half dashed, the ``shipped`` margin a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = list(dict.fromkeys(name.rsplit(" ", 1)[0] for name in curves))
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, points in curves.items():
        colour = colours(corpora.index(name.rsplit(" ", 1)[0]) % 10)
        ax.plot(
            [p[2] for p in points],
            [p[1] for p in points],
            marker=".",
            label=name,
            color=colour,
            linestyle="--" if "dev" in name else "-",
        )
        chosen = next(p for p in points if p[0] == shipped)
        ax.scatter([chosen[2]], [chosen[1]], s=60, zorder=3, color=colour)
    ax.axvline(0.10, color="grey", linewidth=0.5)
    ax.axhline(0.03, color="grey", linewidth=0.5)
    ax.set_xlabel("off-topic questions answered")
    ax.set_ylabel("in-scope questions refused")
    ax.set_title(f"Refusal trade-off as the margin moves (dot: shipped, {shipped})")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(BLIND / "refusal_curve.png", dpi=110)


if __name__ == "__main__":
    sys.exit(main())
