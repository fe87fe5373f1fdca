"""How soon a freshly started chat page is usable, beside the HTTP API's first answer: `python -m bench.page_start`.

Both start as new processes on 127.0.0.1 over the same prebuilt index (built once, not timed):

- page: `streamlit run streamlit_app.py`; a headless Chromium (Debian's, via Playwright) opens the
  page as soon as the server answers its health check. Timed from the process start: the chat
  input visible (the page is usable: a question typed now is answered once the engine is ready),
  and the engine ready (the sidebar's document count drawn);
- api: `python -m assistant serve`; timed from the process start to the first 200 answer of
  ``POST /v1/ask``.

Writes `bench/page_start.json`. Run it on an idle machine; each figure is the median of ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "page_start.json"
CHROMIUM = "/usr/bin/chromium"
QUESTION = "What is LoRA?"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(
        ASSISTANT_CORPUS=str(base / "corpus"), ASSISTANT_INDEX=str(base / "index"),
        ASSISTANT_FEEDBACK_LOG=str(base / "feedback.jsonl"),
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
    )  # fmt: skip
    return env


def _wait_http(url: str, started: float, proc: subprocess.Popen, timeout: float = 120) -> float:
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return time.perf_counter() - started
        except OSError:
            if proc.poll() is not None or time.perf_counter() - started > timeout:
                raise RuntimeError(f"{url} never answered") from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def page_once(base: Path, browser: Any) -> dict[str, float]:
    """One fresh `streamlit run` and one first visit."""
    port = _port()
    streamlit = shutil.which("streamlit", path=str(Path(sys.executable).parent)) or "streamlit"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [streamlit, "run", str(ROOT / "streamlit_app.py"), "--server.address", "127.0.0.1", "--server.port",
         str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=_env(base), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        health = _wait_http(f"http://127.0.0.1:{port}/_stcore/health", started, proc)
        tab = browser.new_page()
        tab.set_default_timeout(120_000)
        visit = time.perf_counter()
        tab.goto(f"http://127.0.0.1:{port}/")
        tab.get_by_test_id("stChatInput").wait_for()
        chat_input = time.perf_counter()
        tab.get_by_test_id("stSidebar").get_by_test_id("stMetric").first.wait_for()
        ready = time.perf_counter()
        tab.close()
        return {
            "server_health_s": round(health, 2),
            "chat_input_from_start_s": round(chat_input - started, 2),
            "chat_input_from_visit_s": round(chat_input - visit, 2),
            "engine_ready_from_start_s": round(ready - started, 2),
        }
    finally:
        _stop(proc)


def api_once(base: Path) -> dict[str, float]:
    """One fresh `assistant serve` and its first answer."""
    port = _port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--port", str(port)],
        cwd=ROOT, env=_env(base), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        body = json.dumps({"question": QUESTION}).encode()
        while True:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/ask", body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(req, timeout=60) as r:
                    if r.status == 200:
                        return {"first_answer_from_start_s": round(time.perf_counter() - started, 2)}
            except OSError:
                if proc.poll() is not None or time.perf_counter() - started > 120:
                    raise RuntimeError("the API never answered") from None
                time.sleep(0.05)
    finally:
        _stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="page-start-") as tmp:
        base = Path(tmp)
        shutil.copytree(ROOT / "corpus", base / "corpus")
        subprocess.run([sys.executable, "-m", "assistant", "index"], cwd=ROOT, env=_env(base), check=True,
                       capture_output=True)  # fmt: skip
        pages, apis = [], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            for _ in range(args.runs):
                pages.append(page_once(base, browser))
                apis.append(api_once(base))
            browser.close()
    result = {
        "runs": args.runs,
        "page": {k: statistics.median(p[k] for p in pages) for k in pages[0]},
        "api": {k: statistics.median(a[k] for a in apis) for k in apis[0]},
        "all": {"page": pages, "api": apis},
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    p, a = result["page"], result["api"]
    print(f"page: chat input {p['chat_input_from_start_s']} s after start ({p['chat_input_from_visit_s']} s after the "
          f"visit), engine ready {p['engine_ready_from_start_s']} s")  # fmt: skip
    print(f"api:  first answer {a['first_answer_from_start_s']} s after start")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
