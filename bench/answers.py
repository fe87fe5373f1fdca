"""Answer quality and latency on the public sets: answer-text hit, refusal rates, warm ask p50/p95.

The floor beside the latency is one raw MiniLM query embedding, measured in the same run.
Run: .venv/bin/python bench/answers.py
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from assistant import Assistant, Settings  # noqa: E402

questions = [json.loads(line) for line in (ROOT / "bench/questions.jsonl").read_text().splitlines() if line.strip()]
offtopic = [line.strip() for line in (ROOT / "bench/offtopic.txt").read_text().splitlines() if line.strip()]

tmp = Path(tempfile.mkdtemp())
shutil.copytree(ROOT / "corpus", tmp / "corpus")
bot = Assistant.open(Settings(corpus_dir=tmp / "corpus", index_dir=tmp / "index"))
for q in questions:  # warm-up: load the model, fill the sentence cache
    bot.ask(q["question"])

latencies, hits, refused_in = [], 0, 0
for q in questions:
    start = time.perf_counter()
    answer = bot.ask(q["question"])
    latencies.append((time.perf_counter() - start) * 1000)
    hits += q["fragment"] in answer.text
    refused_in += not answer.answerable
refused_off = sum(not bot.ask(q).answerable for q in offtopic)
floor = []
for q in questions:
    start = time.perf_counter()
    bot.embedder.model._model.encode([q["question"]])
    floor.append((time.perf_counter() - start) * 1000)

pct = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1]  # noqa: E731
print(f"in-scope questions: {len(questions)}, off-topic: {len(offtopic)}")
print(f"answer-text hit       {hits / len(questions):.3f}")
print(f"in-scope refused      {refused_in / len(questions):.3f}")
print(f"off-topic refused     {refused_off / len(offtopic):.3f}")
print(f"warm ask p50 / p95    {statistics.median(latencies):.1f} / {pct(latencies, 95):.1f} ms")
print(f"floor: raw query embedding p50  {statistics.median(floor):.1f} ms")
