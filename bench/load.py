"""Load test: N concurrent clients against `assistant serve` on loopback, then the same load during a rebuild.

Run: .venv/bin/python bench/load.py [--clients 4] [--seconds 10] [--max-requests 400]
Prints throughput, p50/p95/p99 latency and error counts; the rebuild phase also checks every
answer came from either the old or the new index generation (the switch is atomic).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.api import create_app
from assistant.config import Settings
from assistant.engine import Assistant

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"


def questions() -> list[str]:
    lines = (ROOT / "bench" / "questions.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()][:20]


def run_load(url: str, clients: int, seconds: float, max_requests: int, qs: list[str]) -> dict[str, object]:
    latencies: list[float] = []
    errors: list[str] = []
    generations: set[int] = set()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    counter = iter(range(max_requests))

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    r = http.post("/v1/ask", json={"question": qs[(i + n) % len(qs)]})
                    ok = r.status_code == 200
                    health = http.get("/healthz").json()["generation"] if ok else None
                except httpx.HTTPError as exc:
                    ok, r, health = False, None, None
                    errors.append(repr(exc))
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if not ok and r is not None:
                        errors.append(f"{r.status_code} {r.text[:100]}")
                    if health is not None:
                        generations.add(health)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / wall,
        "p50_ms": q[49] * 1000,
        "p95_ms": q[94] * 1000,
        "p99_ms": q[98] * 1000,
        "generations": sorted(generations),
        "error_samples": errors[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=400)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(ROOT / "corpus", corpus)
        settings = Settings.from_env(corpus_dir=corpus, index_dir=Path(tmp) / "index", api_token=TOKEN)
        bot = Assistant.open(settings)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = uvicorn.Config(create_app(bot, settings), host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        qs = questions()
        base = run_load(url, args.clients, args.seconds, args.max_requests, qs)
        print("steady   ", json.dumps(base))

        before = bot.status().generation
        rebuild: dict[str, object] = {}

        def do_rebuild() -> None:
            time.sleep(args.seconds / 4)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            r = httpx.post(f"{url}/v1/index/rebuild", headers=auth, timeout=60)  # 202 and a status URL
            job = r.json()
            while job.get("status") == "running":
                time.sleep(0.5)
                job = httpx.get(f"{url}{job['status_url']}", headers=auth, timeout=60).json()
            rebuild["status"] = job.get("status", r.status_code)
            rebuild["generation"] = job.get("generation")

        rt = threading.Thread(target=do_rebuild)
        rt.start()
        during = run_load(url, args.clients, args.seconds, args.max_requests, qs)
        rt.join()
        print("rebuild  ", json.dumps(during))
        print("rebuilt  ", json.dumps({"from_generation": before, **rebuild}))
        assert during["errors"] == 0, "requests failed during the rebuild"
        assert set(during["generations"]) <= {before, rebuild["generation"]}
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    main()
