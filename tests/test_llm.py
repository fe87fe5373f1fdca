"""The LLM path, against a local server that speaks the OpenAI chat-completions protocol."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, LLMError
from assistant.answer import Answer
from assistant.llm import MarkerFilter, clean_markers, llm_from_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from openai_server import OpenAIServer

REPLY = "LoRA trains a smaller set of new parameters [2]. It keeps the original model unchanged [9] [1]."


def is_condense(body: dict[str, Any]) -> bool:
    return "Standalone question" in str(body["messages"])


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(
        lambda body: "What are the limitations of prompt engineering?" if is_condense(body) else REPLY
    ) as srv:
        yield srv


@pytest.fixture
def llm_bot(bot: Assistant, server: OpenAIServer) -> Assistant:
    """The `bot`, reopened with ASSISTANT_LLM pointing at the local server."""
    settings = bot.settings.replace(llm=f"openai-compatible:{server.base_url}:fake-model", llm_timeout=1.0)
    return Assistant.open(settings, embedder=bot.embedder)


def test_llm_answer_keeps_only_real_markers_renumbered(llm_bot: Assistant, server: OpenAIServer) -> None:
    answer = llm_bot.ask("What is LoRA?")

    assert answer.backend == "OpenAILike:fake-model" and answer.note is None
    assert "[9]" not in answer.text
    assert answer.text == "LoRA trains a smaller set of new parameters [1]. It keeps the original model unchanged [2]."
    assert len(answer.citations) == 2
    body = server.requests[-1]
    assert body["model"] == "fake-model" and body["max_tokens"] == 512  # ASSISTANT_LLM_MAX_TOKENS
    system = body["messages"][0]["content"]
    assert "<context>" in system and "not instructions" in system
    assert answer.citations[0].text in system  # the passage behind [1] was sent as context


def test_streamed_llm_answer_carries_citations(llm_bot: Assistant, server: OpenAIServer) -> None:
    *pieces, final = list(llm_bot.stream("What is LoRA?"))

    assert server.requests[-1]["stream"] is True
    assert len(pieces) > 3 and all(isinstance(p, str) for p in pieces)
    assert "[9]" not in "".join(pieces)
    assert isinstance(final, Answer) and len(final.citations) == 2
    assert final.text == "LoRA trains a smaller set of new parameters [1]. It keeps the original model unchanged [2]."


def test_server_error_falls_back_to_extractive_with_a_note(llm_bot: Assistant, server: OpenAIServer) -> None:
    server.status = 500

    answer = llm_bot.ask("What is LoRA?")
    *_, streamed = list(llm_bot.stream("What is LoRA?"))

    for a in (answer, streamed):
        assert a.backend == "extractive" and a.answerable and a.citations
        assert a.note and "unavailable" in a.note
        assert "Low-Rank Adaptation" in a.text


def test_timeout_falls_back(llm_bot: Assistant, server: OpenAIServer) -> None:
    server.delay = 2.5  # the timeout is 1 s

    answer = llm_bot.ask("How long does fine-tuning take?")

    assert answer.backend == "extractive" and answer.note and "timed out" in answer.note


def test_refusal_happens_before_any_llm_call(llm_bot: Assistant, server: OpenAIServer) -> None:
    answer = llm_bot.ask("What is the capital of France?")

    assert not answer.answerable and answer.citations == ()
    assert server.requests == []


def test_followups_are_condensed_by_the_llm(llm_bot: Assistant, server: OpenAIServer) -> None:
    history = [
        {"role": "user", "content": "Tell me about prompt engineering."},
        {"role": "assistant", "content": "..."},
    ]

    answer = llm_bot.ask("What are its limitations?", history=history)

    assert answer.query == "What are the limitations of prompt engineering?"
    assert is_condense(server.requests[0]) and "Tell me about prompt engineering." in str(server.requests[0])


def test_llm_passed_to_open_is_used(bot: Assistant, server: OpenAIServer) -> None:
    llm = llm_from_spec(f"openai-compatible:{server.base_url}:other-model", timeout=2.0)
    answer = Assistant.open(bot.settings, embedder=bot.embedder, llm=llm).ask("What is LoRA?")

    assert answer.backend == "OpenAILike:other-model"


@pytest.mark.parametrize("spec", ["gpt-4o", "openai-compatible:not-a-url", "mistral:7b"])
def test_malformed_specs_raise(spec: str) -> None:
    with pytest.raises(LLMError, match="openai"):
        llm_from_spec(spec)


def test_openai_without_key_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        llm_from_spec("openai:gpt-4o-mini")


def test_no_spec_means_no_llm() -> None:
    assert llm_from_spec(None) is None and llm_from_spec("") is None


def test_base_url_with_port_and_path_is_split_from_the_model() -> None:
    llm = llm_from_spec("openai-compatible:http://localhost:8080/v1:qwen2.5:7b")
    assert llm.api_base == "http://localhost:8080/v1" and llm.model == "qwen2.5:7b"


def test_marker_filter_handles_markers_split_across_pieces() -> None:
    f = MarkerFilter(3)
    shown = "".join(f.feed(p) for p in ["A [", "3] b [1", "2] c [2][", "3]."]) + f.flush()

    assert shown == "A [1] b c [2][1]."
    assert f.cited == [2, 1]


def test_clean_markers_merges_groups() -> None:
    assert clean_markers("A [2]. B [7] [1, 2].", 2) == ("A [1]. B [2][1].", [1, 0])
