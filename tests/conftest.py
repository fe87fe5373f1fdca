"""Shared fixtures: every test gets its own corpus and index under tmp_path.

The real embedding model and a real Chroma store are used throughout. The model is loaded once
per session, and the real corpus is indexed once per session and copied into each test that
needs a ready index, which keeps the suite fast without faking either.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

from assistant import Assistant, Settings
from assistant.embeddings import Embedder

ROOT = Path(__file__).resolve().parent.parent
REAL_CORPUS = ROOT / "corpus"
MINI_CORPUS = Path(__file__).resolve().parent / "fixtures" / "mini_corpus"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """End-to-end tests (marked ``e2e``: the page in Chromium, the wheel in a fresh venv, the whole
    benchmark) take minutes; they run with ``make test-e2e`` (``RUN_E2E_TESTS=1``) and in CI."""
    if os.environ.get("RUN_E2E_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="opt-in: make test-e2e")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every corpus, index and log path at tmp_path; drop any LLM or server configuration."""
    for name in list(os.environ):
        if name.startswith("ASSISTANT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ASSISTANT_CORPUS", str(tmp_path / "corpus"))
    monkeypatch.setenv("ASSISTANT_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("ASSISTANT_FEEDBACK_LOG", str(tmp_path / "feedback.jsonl"))


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real all-MiniLM-L6-v2 model, loaded once for the whole session."""
    emb = Embedder.from_defaults(Settings())
    _ = emb.model  # load now, so per-test timings and call counts start clean
    return emb


@pytest.fixture
def mini_corpus(tmp_path: Path) -> Path:
    """A small two-file corpus in tmp_path/corpus, for ingestion tests."""
    target = tmp_path / "corpus"
    shutil.copytree(MINI_CORPUS, target)
    return target


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A copy of the real corpus in tmp_path/corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(REAL_CORPUS, target)
    return target


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings that point at tmp_path (the autouse fixture sets the variables)."""
    return Settings.from_env()


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The real corpus indexed once per session; tests get copies via the `bot` fixture."""
    base = tmp_path_factory.mktemp("built")
    corpus = base / "corpus"
    shutil.copytree(REAL_CORPUS, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=base / "index")
    Assistant.open(settings, embedder=embedder)
    return base


@pytest.fixture
def bot(tmp_path: Path, built_index: Path, embedder: Embedder) -> Iterator[Assistant]:
    """An assistant over a private copy of the real corpus and its prebuilt index."""
    shutil.copytree(built_index / "corpus", tmp_path / "corpus")
    # The model's ONNX export is read-only and ~90 MB: linked, not copied.
    shutil.copytree(built_index / "index", tmp_path / "index", ignore=shutil.ignore_patterns("model-onnx"))
    shutil.copytree(built_index / "index" / "model-onnx", tmp_path / "index" / "model-onnx", copy_function=os.link)
    yield Assistant.open(Settings.from_env(), embedder=embedder)
