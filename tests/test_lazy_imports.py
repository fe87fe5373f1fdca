"""Commands that embed nothing never import the heavy libraries (torch, Chroma, LlamaIndex)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from assistant import Assistant

HEAVY = ("torch", "sentence_transformers", "chromadb", "llama_index.core")

PROBE = f"""
import json, sys
HEAVY = {HEAVY!r}
from click.testing import CliRunner
from assistant.cli import cli
result = CliRunner().invoke(cli, sys.argv[1:])
print(json.dumps({{"exit": result.exit_code, "output": result.output,
                  "loaded": [m for m in HEAVY if m in sys.modules]}}))
"""


def _run(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["ask", "--help"], ["index", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    result = _run(*args)
    assert result["exit"] == 0 and "Example usage" in result["output"]
    assert result["loaded"] == []


def test_index_on_an_unchanged_corpus_imports_nothing_heavy(bot: Assistant) -> None:
    result = _run("index")
    assert result["exit"] == 0
    assert result["output"].startswith("Index is up to date: 3 files unchanged, nothing embedded")
    assert result["loaded"] == []
