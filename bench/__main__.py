"""Run every benchmark and print one table; write `results.json` and `scale.png`.

Example usage:

    python -m bench                  # everything, scale at 1k, 10k and 100k chunks (about half an hour)
    python -m bench --quick          # a smoke run in a couple of minutes: small sets, small scale
    python -m bench --sizes 1000 10000 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from assistant import Assistant, Settings
from assistant.embeddings import Embedder
from bench import blind, indexing, latency, quality, report, scale
from bench.baseline import LlamaIndexDefault, default_embed_model
from bench.common import CORPUS, ROOT
from bench.synthetic import corpus_sentences, write_corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sets and sizes: checks the benchmark runs")
    parser.add_argument("--sizes", type=int, nargs="+", help="synthetic corpus sizes in chunks")
    parser.add_argument("--throughput-chunks", type=int, help="synthetic chunks for the indexing throughput figure")
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="where results.json and scale.png go")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([200] if args.quick else [1_000, 10_000, 100_000])
    limit = 8 if args.quick else None
    throughput_chunks = args.throughput_chunks or (100 if args.quick else 2_000)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        corpus = work / "corpus"
        shutil.copytree(CORPUS, corpus)
        # Model loaded and libraries imported before any clock starts (the cold-start rows time those).
        import chromadb  # noqa: F401
        import llama_index.retrievers.bm25
        import llama_index.vector_stores.chroma  # noqa: F401

        embedder = Embedder.from_defaults(Settings())
        embedder.embed_query("warm up")
        base_model = default_embed_model()
        base_model.get_query_embedding("warm up")

        log("indexing")
        rows = indexing.onnx_export(embedder, work)  # once, like the model load; later builds copy it
        rows += indexing.throughput(corpus, work, embedder, base_model, "real corpus")
        synthetic = write_corpus(work / "throughput", throughput_chunks, corpus_sentences(CORPUS))
        rows += indexing.throughput(synthetic, work, embedder, base_model, "synthetic")
        rows += indexing.rebuilds(corpus, work, embedder, base_model)

        bot = Assistant.open(Settings(corpus_dir=corpus, index_dir=work / "index-real corpus"), embedder=embedder)
        baseline = LlamaIndexDefault.build(corpus, base_model, persist_dir=work / "persist")
        log("quality")
        # Headline quality: the blind sets' test halves (and dev halves), beside the LlamaIndex default.
        rows = blind.run(embedder=embedder, limit=limit) + quality.run(bot, baseline, limit) + rows
        log("latency")
        rows += latency.warm(bot, baseline, limit)
        rows += latency.cold(corpus, work / "index-real corpus", work / "persist", repeats=1 if args.quick else 3)
        log("scale")
        args.out.mkdir(parents=True, exist_ok=True)

        def save(scale_rows: list, series: dict) -> None:  # after each size, so a long run keeps what it has
            elapsed = time.perf_counter() - started
            report.write_json(args.out / "results.json", rows + scale_rows, series, args.quick, elapsed)
            report.plot(args.out / "scale.png", series)

        scale_rows, series = scale.run(sizes, work, limit or 57, log, save)
        rows += scale_rows
    finally:
        shutil.rmtree(work, ignore_errors=True)

    seconds = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json(args.out / "results.json", rows, series, args.quick, seconds)
    report.plot(args.out / "scale.png", series)
    print(report.table(rows))
    print(f"\n{len(rows)} figures in {seconds:.0f} s; wrote {args.out / 'results.json'} and {args.out / 'scale.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
