"""The page in a real headless Chromium, served by `streamlit run` on 127.0.0.1.

Needs Debian's chromium (tests/install_browser.sh installs it) and the playwright package; without
either the tests are skipped with the reason, never passed silently. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from assistant import Assistant

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def page_url(bot: Assistant, tmp_path: Path) -> Iterator[str]:
    """`streamlit run` over the `bot` fixture's corpus and index (the ASSISTANT_* variables point there)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: run tests/install_browser.sh (Debian packages chromium, chromium-driver)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is missing: pip install -e '.[dev]'")
    port = _free_port()
    streamlit = shutil.which("streamlit", path=str(Path(sys.executable).parent)) or "streamlit"
    log = (tmp_path / "streamlit.log").open("w")
    server = subprocess.Popen(
        [streamlit, "run", str(ROOT / "streamlit_app.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"streamlit did not start:\n{(tmp_path / 'streamlit.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.fixture
def page(page_url: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.set_default_timeout(120_000)  # the first load includes the embedding model
        tab.goto(page_url)
        tab.get_by_test_id("stChatInput").wait_for()
        yield tab
        browser.close()


def test_ask_a_question_and_open_a_source(page) -> None:  # noqa: ANN001 - playwright Page
    from playwright.sync_api import expect

    page.screenshot(path=ARTIFACTS / "01-empty-chat.png", full_page=True)
    page.get_by_test_id("stChatInputTextArea").fill("What is fine-tuning?")
    page.keyboard.press("Enter")
    messages = page.get_by_test_id("stChatMessage")
    expect(messages).to_have_count(2)
    expect(messages.nth(1)).to_contain_text("[1]")
    source = page.get_by_test_id("stExpander").first
    source.locator("summary").click()
    expect(source.locator("mark").first).to_be_visible()  # the quoted sentence, highlighted
    page.screenshot(path=ARTIFACTS / "02-answer-with-source.png")

    page.get_by_test_id("stChatInputTextArea").fill("How long does it take to implement?")
    page.keyboard.press("Enter")
    expect(messages).to_have_count(4)
    expect(page.get_by_text("Searching for:")).to_be_visible()
    expect(messages.nth(3)).to_contain_text("weeks or months")
    page.screenshot(path=ARTIFACTS / "03-follow-up.png", full_page=True)


def test_complete_a_guided_dialog(page) -> None:  # noqa: ANN001 - playwright Page
    from playwright.sync_api import expect

    page.get_by_text("Guided", exact=True).click()
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_have_attribute("placeholder", "Describe your situation…")
    box.fill("We have 50k labelled support tickets and an ML team, and need consistent output at high volume.")
    page.keyboard.press("Enter")
    recommendation = page.get_by_text("Recommendation:", exact=False)
    question = page.get_by_text("Question ", exact=False)
    for n in range(8):
        expect(question.or_(recommendation).first).to_be_visible()
        if recommendation.count():
            break
        if n == 0:
            page.screenshot(path=ARTIFACTS / "04-guided-question.png")
        option = page.locator("[class*='st-key-option-']").first  # stale options were detached below
        key = next(c for c in (option.get_attribute("class") or "").split() if c.startswith("st-key-option-"))
        option.locator("button").click()
        page.locator(f".{key}").wait_for(state="detached")  # the next question replaced this one
    expect(recommendation).to_be_visible()
    start_over = page.get_by_role("button", name="Start over")
    card = page.get_by_test_id("stVerticalBlock").filter(has=start_over).last
    card.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "05-recommendation.png")
    card.screenshot(path=ARTIFACTS / "06-recommendation-card.png")
