"""Retrieval quality on bench/questions.jsonl: ours vs LlamaIndex out of the box, same corpus and model, one run.

Run: .venv/bin/python bench/retrieval.py
"""
import json, os, shutil, statistics, sys, tempfile, time
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from assistant import Assistant, Settings

questions = [json.loads(l) for l in (ROOT / "bench/questions.jsonl").read_text().splitlines() if l.strip()]

def score(ranked_texts):
    hits = mrr = chars = 0
    for q, texts in zip(questions, ranked_texts):
        pos = next((i for i, t in enumerate(texts[:10]) if q["fragment"] in t), None)
        hits += pos is not None and pos < 3
        mrr += 1 / (pos + 1) if pos is not None else 0
        chars += sum(len(t) for t in texts[:3])
    n = len(questions)
    return hits / n, mrr / n, chars / n

tmp = Path(tempfile.mkdtemp())
shutil.copytree(ROOT / "corpus", tmp / "corpus")
bot = Assistant.open(Settings(corpus_dir=tmp / "corpus", index_dir=tmp / "index"))
ours = [[p.text for p in bot.retrieve(q["question"], k=10)] for q in questions]

from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
idx = VectorStoreIndex.from_documents(SimpleDirectoryReader(str(tmp / "corpus")).load_data(), embed_model=bot.embedder.model)
r = idx.as_retriever(similarity_top_k=10)
base = [[n.node.get_content() for n in r.retrieve(q["question"])] for q in questions]
print(f"questions: {len(questions)}")
print(f"{'pipeline':28} {'hit@3':>6} {'MRR@10':>7} {'top-3 chars':>12}")
for name, res in (("ours (hybrid, structured)", ours), ("LlamaIndex default", base)):
    h, m, c = score(res)
    print(f"{name:28} {h:6.3f} {m:7.3f} {c:12.0f}")
