"""What every benchmark shares: the public question sets, timing, rows of the result table."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@dataclass(frozen=True)
class Row:
    """One line of the result table: our figure, the LlamaIndex default's, and a reference point."""

    section: str
    figure: str
    ours: float | None
    llamaindex: float | None = None
    reference: float | None = None  # a floor or raw figure measured in the same run
    reference_name: str = ""
    unit: str = ""
    target: str = ""
    better: str = "lower"  # which way is better, for the ratio column

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def questions(limit: int | None = None) -> list[dict[str, str]]:
    """The public in-scope set: question, source and the fragment that answers it."""
    lines = (ROOT / "bench" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()][:limit]


def offtopic(limit: int | None = None) -> list[str]:
    """The public off-topic set: questions the corpus does not cover."""
    lines = (ROOT / "bench" / "offtopic.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()][:limit]


def timed_ms(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[float]:
    """Milliseconds per call of ``fn(item)``."""
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - start) * 1000)
    return out


def p50(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def dir_bytes(path: Path, skip: str | None = None) -> int:
    """Bytes of all files under ``path``, leaving out the top-level folder named ``skip``."""
    return sum(
        f.stat().st_size for f in path.rglob("*") if f.is_file() and not (skip and f.relative_to(path).parts[0] == skip)
    )


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a fresh benchmark process: offline, no telemetry, no ASSISTANT_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False", TOKENIZERS_PARALLELISM="false"
    )
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_child(task: str, *args: str, env: dict[str, str] | None = None, timeout: float = 7200) -> dict[str, Any]:
    """Run ``python -m bench.child task args...`` in a new process and return the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.child", task, *args],
        capture_output=True,
        text=True,
        env=env or child_env(),
        cwd=ROOT,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench.child {task} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
