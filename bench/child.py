"""Work that needs a fresh process (cold starts, clean peak memory): `python -m bench.child TASK ARGS`.

Each task prints one JSON object as its last line of output.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import dir_bytes, p50, p95, questions, timed_ms


def peak_mb() -> float:
    """This process's peak resident memory, in MiB.

    ``VmHWM`` rather than ``getrusage``: ru_maxrss carries the parent's peak over fork and exec.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cold_ours(spawned: str, corpus: str, index: str) -> dict[str, Any]:
    from assistant import Assistant, Settings

    bot = Assistant.open(Settings(corpus_dir=Path(corpus), index_dir=Path(index)))
    opened = time.time() - float(spawned)
    bot.ask("What is LoRA?")
    return {"seconds": time.time() - float(spawned), "open_seconds": opened, "torch_loaded": "torch" in sys.modules}


def cold_baseline(spawned: str, persist: str) -> dict[str, Any]:
    from bench.baseline import LlamaIndexDefault, default_embed_model

    baseline = LlamaIndexDefault.load(Path(persist), default_embed_model())
    baseline.ask("What is LoRA?")
    return {"seconds": time.time() - float(spawned)}


def cold_floor(spawned: str) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    from assistant.config import default_embed_model_path

    SentenceTransformer(default_embed_model_path(), device="cpu").encode(["What is LoRA?"])
    return {"seconds": time.time() - float(spawned)}


def eager_imports(spawned: str) -> dict[str, Any]:
    """Everything the package can use, imported up front, as a program without lazy imports would."""
    import chromadb  # noqa: F401
    import click  # noqa: F401
    import fastapi  # noqa: F401
    import llama_index.core
    import llama_index.embeddings.huggingface
    import llama_index.llms.openai
    import llama_index.llms.openai_like
    import llama_index.retrievers.bm25
    import llama_index.vector_stores.chroma  # noqa: F401
    import sentence_transformers  # noqa: F401
    import streamlit  # noqa: F401
    import torch  # noqa: F401
    import uvicorn  # noqa: F401

    return {"seconds": time.time() - float(spawned)}


def scale_ours(corpus: str, index: str, n_questions: str) -> dict[str, Any]:
    from assistant import Assistant, Settings
    from assistant.embeddings import Embedder

    qs = [q["question"] for q in questions(int(n_questions))]
    settings = Settings(corpus_dir=Path(corpus), index_dir=Path(index))
    embedder = Embedder.from_defaults(settings)
    embedder.embed_query("warm up")  # load the model outside the build time, as for the baseline
    embedder.compile_to(Path(index) / "model-onnx")  # the one-time export, timed on its own elsewhere
    start = time.perf_counter()
    bot = Assistant.open(settings, embedder=embedder)
    build = time.perf_counter() - start
    for q in qs:  # warm-up: the sentence cache and Chroma's pages
        bot.ask(q)
    ask = timed_ms(bot.ask, qs)
    retrieve = timed_ms(bot.retrieve, qs)
    return {
        "chunks": bot.status().chunks,
        "build_seconds": build,
        "disk_mb": dir_bytes(Path(index), skip="model-onnx") / 2**20,  # the model export is a constant 86 MiB
        "peak_mb": peak_mb(),
        "ask_p50_ms": p50(ask),
        "ask_p95_ms": p95(ask),
        "retrieve_p50_ms": p50(retrieve),
    }


def scale_baseline(corpus: str, persist: str, n_questions: str) -> dict[str, Any]:
    from bench.baseline import LlamaIndexDefault, default_embed_model

    qs = [q["question"] for q in questions(int(n_questions))]
    model = default_embed_model()
    model.get_query_embedding("warm up")  # load the model outside the build time, as ours does
    start = time.perf_counter()
    baseline = LlamaIndexDefault.build(Path(corpus), model, persist_dir=Path(persist))
    build = time.perf_counter() - start
    for q in qs:
        baseline.ask(q)
    ask = timed_ms(baseline.ask, qs)
    retrieve = timed_ms(lambda q: baseline.retrieve(q, 5), qs)
    return {
        "chunks": baseline.chunks,
        "build_seconds": build,
        "disk_mb": dir_bytes(Path(persist)) / 2**20,
        "peak_mb": peak_mb(),
        "ask_p50_ms": p50(ask),
        "ask_p95_ms": p95(ask),
        "retrieve_p50_ms": p50(retrieve),
    }


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "cold-ours": cold_ours,
    "cold-baseline": cold_baseline,
    "cold-floor": cold_floor,
    "eager-imports": eager_imports,
    "scale-ours": scale_ours,
    "scale-baseline": scale_baseline,
}

if __name__ == "__main__":
    print(json.dumps(TASKS[sys.argv[1]](*sys.argv[2:])))
