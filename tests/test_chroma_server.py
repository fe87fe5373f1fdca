"""The same engine against a real `chroma run` server (ASSISTANT_CHROMA_URL)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.config import Settings
from assistant.embeddings import Embedder
from assistant.engine import Assistant

CHROMA = Path(sys.executable).parent / "chroma"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    """A real Chroma server on loopback with a temp data dir, stopped afterwards."""
    port = _free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "chroma-data")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited: {(tmp_path / 'chroma.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("chroma run did not answer its heartbeat")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_index_and_query_through_chroma_server(
    mini_corpus: Path, tmp_path: Path, chroma_url: str, embedder: Embedder
) -> None:
    server = Settings.from_env(chroma_url=chroma_url, corpus_dir=mini_corpus, index_dir=tmp_path / "srv-index")
    local = Settings.from_env(corpus_dir=mini_corpus, index_dir=tmp_path / "local-index")
    remote_bot = Assistant.open(server, embedder=embedder)
    local_bot = Assistant.open(local, embedder=embedder)
    assert remote_bot.status().chunks == local_bot.status().chunks > 0
    assert not (tmp_path / "srv-index" / "chroma").exists()  # vectors live on the server
    question = "How does fine-tuning change a model?"
    remote = [(p.id, p.text) for p in remote_bot.retrieve(question, k=3)]
    assert remote == [(p.id, p.text) for p in local_bot.retrieve(question, k=3)]
    # Reopening against the same server reuses the index instead of rebuilding it.
    again = Assistant.open(server, embedder=embedder)
    assert again.status().generation == remote_bot.status().generation
    assert [p.id for p in again.retrieve(question, k=3)] == [i for i, _ in remote]
