"""`assistant chat` and `assistant guide` in a real terminal: tmux drives keys and reads the screen.

Each test runs its own tmux server on a private socket and kills only that server afterwards.
Skipped, saying why, when tmux is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow]


class Terminal:
    """One command in a 120x40 tmux pane."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.socket = f"assistant-test-{uuid.uuid4().hex[:8]}"
        line = " ".join(["env", *(f"{k}={v}" for k, v in env.items()), *command])
        self._tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", "-c", str(ROOT), line)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)
        self.keys("Enter")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t", "-S", "-200")

    def wait_for(self, pattern: str, timeout: float = 90, after: int = 0) -> str:
        """The screen once ``pattern`` appears ``after`` times or more (a regex)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if len(re.findall(pattern, screen)) > after:
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} did not appear; the screen:\n{screen}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(bot: Assistant) -> Iterator[type[Terminal]]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is missing: apt-get install tmux")
    opened: list[Terminal] = []

    def start(*args: str) -> Terminal:
        env = {k: v for k, v in os.environ.items() if k.startswith(("ASSISTANT_", "HF_", "TRANSFORMERS_"))}
        env.update(ANONYMIZED_TELEMETRY="False", TERM="xterm-256color", COLUMNS="120")
        t = Terminal([sys.executable, "-m", "assistant", *args], env)
        opened.append(t)
        return t

    yield start  # type: ignore[misc]
    for t in opened:
        t.close()


def test_chat_line_editing_history_help_clear_and_rendered_markdown(terminal, bot: Assistant) -> None:
    t = terminal("chat")
    screen = t.wait_for(r"you>")
    assert "Ask about the documents" in screen and bot.retriever.profile.titles[0] in screen  # the corpus in use
    t.type("/help")
    t.wait_for(r"/clear\s+forget the conversation")

    t.type("What is fine-tuning?")
    t.wait_for(r"Sources:")
    t.type("How long does it take to implement?")
    screen = t.wait_for(r"Sources:", after=1)
    assert re.search(r"Searching for: .*fine-tuning", screen, re.IGNORECASE)
    assert not re.search(r"\*\*?\w", screen)  # Markdown is rendered, not printed as *asterisks*

    t.keys("Up")  # the previous question comes back for editing
    t.wait_for(r"you> How long does it take to implement\?", after=1)
    t.keys("C-a")
    t.keys("C-k")  # edit the line: empty it
    t.type("/clear")
    t.wait_for(r"Forget the conversation so far\? \[y/N\]")
    t.type("y")
    t.wait_for(r"Conversation cleared")
    t.type("/quit")


def test_guide_in_a_terminal_takes_an_option_by_number(terminal) -> None:
    t = terminal("guide")
    t.wait_for(r"Describe your situation")
    t.type("We want an LLM to help our support team.")
    t.wait_for(r"1\) None")
    t.type("what do you mean?")
    t.wait_for(r"A labelled example is one input")
    t.type("4")
    t.wait_for(r"you said: “Tens of thousands”")
    t.type("/quit")
