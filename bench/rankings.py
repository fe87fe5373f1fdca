"""Each ranking alone on the blind sets: passage vectors, sentence vectors and keywords (BM25), and
the fused ranking the engine returns (`HybridRetriever.retrieve`).

`retrieval.DEFAULT_FUSION` and the retrieval candidates in the closing notes were judged by these
figures: hit@k is the share of in-scope questions with a passage holding an answering fragment among
a ranking's first k. The test half prints aggregate figures only; ``--show`` lists, for each dev
question, the rank of its first answering passage in every ranking (``-`` past the depth searched).

Example usage:

    python -m bench.rankings                       # both halves, every corpus
    python -m bench.rankings --half dev --corpus product --show
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assistant.retrieval import CANDIDATES_PER_RESULT, MIN_CANDIDATES
from bench.blind import CORPORA, HALVES, BlindCorpus, add_set_options, chosen, half_of, holds

RANKINGS = ("passages", "sentences", "keywords", "fused")
CUTOFFS = (1, 3, 5, 10)
#: How deep each ranking is read: past the deepest cutoff, so a miss says how far off it was.
DEPTH = 20


def ranks(
    retriever: Any, embedder: Any, question: str, fragments: Sequence[str], depth: int = DEPTH
) -> dict[str, int | None]:
    """The 0-based rank of the first passage holding one of ``fragments`` in each ranking, or None.

    The rankings are searched as `HybridRetriever.retrieve` searches them (the question's typos
    mended first). The retriever reads deeper into each ranking the more passages it is asked for
    (`retrieval.MIN_CANDIDATES`, `retrieval.CANDIDATES_PER_RESULT`), so "fused" is read from one
    search per depth it reads, asked for the largest cutoff reading that deep: the shallowest that
    holds an answering passage gives its rank, never put before the cutoffs whose search held none.
    For every cutoff of one depth, hit@k is then exactly whether ``retrieve(question, k)`` holds
    one, as `bench.blind` counts hit@3.
    """
    vector = embedder.embed_query(retriever.profile.spelt(question, embedder.reads_whole))
    # Every passage, with its text: which of them answer the question.
    everything = retriever.dense(vector, retriever.manifest.chunks)
    answering = {node.node_id for node, _ in everything if holds(node.get_content(), fragments)}

    def first(order: Sequence[str]) -> int | None:
        return next((i for i, key in enumerate(order) if key in answering), None)

    found = {
        "passages": first([node.node_id for node, _ in everything[:depth]]),
        "sentences": first(list(retriever.sentences(vector, depth))),
        "keywords": first([node.node_id for node, _ in retriever.keyword(question, depth)]),
        "fused": None,
    }
    # The largest cutoff reading each depth: its result starts with those of the smaller ones.
    widest = {max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT): k for k in sorted((*CUTOFFS, depth))}
    shorter = 0  # the largest cutoff searched before: its result held no answering passage
    for k in widest.values():
        rank = first([p.id for p in retriever.retrieve(question, k, embedding=vector)])
        if rank is not None:
            found["fused"] = max(rank, shorter)
            break
        shorter = k
    return found


def hit_at(found: Sequence[dict[str, int | None]], ranking: str, k: int) -> float:
    """The share of questions whose first answering passage is among ``ranking``'s first ``k``."""
    return sum(r[ranking] is not None and r[ranking] < k for r in found) / max(len(found), 1)


def run(
    halves: Sequence[str] = HALVES,
    corpora: Sequence[BlindCorpus] = CORPORA,
    show: Callable[[str], None] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{"<corpus> <half>": {ranking: {"hit@k": share}}}`` over the in-scope questions.

    ``show`` gets one line per dev question (never a test question's).
    """
    from assistant import Assistant, Settings
    from assistant.embeddings import Embedder

    out: dict[str, dict[str, dict[str, float]]] = {}
    work = Path(tempfile.mkdtemp(prefix="rankings-"))
    try:
        embedder = Embedder.from_defaults(Settings())
        for corpus in corpora:
            bot = Assistant.open(
                Settings(corpus_dir=corpus.corpus_dir, index_dir=work / corpus.name), embedder=embedder
            )
            retriever = bot.retriever
            for half in halves:
                items = half_of(corpus, half)["inscope"]
                found = [ranks(retriever, embedder, item["question"], item["fragments"]) for item in items]
                if show is not None and half == "dev":
                    for item, r in zip(items, found):
                        cells = " ".join(f"{name} {'-' if r[name] is None else r[name] + 1:>2}" for name in RANKINGS)
                        show(f"{corpus.name} {item['id']}  {cells}  {item['question']!r}")
                out[f"{corpus.name} {half}"] = {
                    name: {f"hit@{k}": hit_at(found, name, k) for k in CUTOFFS} for name in RANKINGS
                }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def table(figures: dict[str, dict[str, dict[str, float]]]) -> str:
    """The figures as a Markdown table, a row per corpus, half and ranking."""
    lines = [
        "| set | ranking | " + " | ".join(f"hit@{k}" for k in CUTOFFS) + " |",
        "|---|---|" + "---:|" * len(CUTOFFS),
    ]
    for name, by_ranking in figures.items():
        for ranking, hits in by_ranking.items():
            lines.append(f"| {name} | {ranking} | " + " | ".join(f"{hits[f'hit@{k}']:.3f}" for k in CUTOFFS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rankings", description=__doc__.split("\n")[0])
    add_set_options(parser)
    parser.add_argument("--show", action="store_true", help="list each dev question's ranks (never the test half's)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    figures = run(*chosen(args), print if args.show else None)
    print(table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
