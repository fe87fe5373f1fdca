"""The `assistant` command line, through click's CliRunner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_every_command_documents_example_usage(runner: CliRunner) -> None:
    assert "Example usage:" in runner.invoke(cli, ["--help"]).output
    for name in cli.commands:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example usage:" in result.output, name


def test_index_twice_embeds_nothing_the_second_time(runner: CliRunner, mini_corpus: Path) -> None:
    first = runner.invoke(cli, ["index"])
    assert first.exit_code == 0, first.output
    assert (
        "Full rebuild: 2 added, 0 updated, 0 removed, 0 unchanged; 3 chunks embedded (3 in the index)" in first.stdout
    )

    second = runner.invoke(cli, ["index"])

    assert second.exit_code == 0
    assert second.stdout == "Index is up to date: 2 files unchanged, nothing embedded (3 chunks).\n"


def test_index_warns_about_bad_files_on_stderr(runner: CliRunner, mini_corpus: Path) -> None:
    (mini_corpus / "empty.md").write_text("")

    result = runner.invoke(cli, ["index"])

    assert result.exit_code == 0
    assert f"Warning: skipped {mini_corpus / 'empty.md'}: is empty; add some text or remove it\n" in result.stderr
    assert "2 added" in result.stdout


def test_missing_corpus_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["--corpus", str(tmp_path / "nowhere"), "index"])

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Corpus folder {tmp_path / 'nowhere'} does not exist. Create it and add .md, .txt, .rst or .html files, "
        "or point ASSISTANT_CORPUS at the folder that holds them.\n"
    )


def test_retrieve_prints_json_passages(runner: CliRunner, mini_corpus: Path) -> None:
    result = runner.invoke(cli, ["retrieve", "What is LoRA?", "-k", "2", "--json"])

    assert result.exit_code == 0, result.output
    passages = json.loads(result.stdout)
    assert len(passages) == 2
    assert passages[0]["source"] == "lora.md" and "Low-Rank Adaptation (LoRA)" in passages[0]["text"]


def test_empty_question_is_refused_with_exit_code_1(runner: CliRunner, mini_corpus: Path) -> None:
    result = runner.invoke(cli, ["retrieve", "   "])

    assert result.exit_code == 1
    assert result.stderr.endswith("Error: The question is empty: type a question.\n")


def test_guide_asks_then_recommends_with_sources(runner: CliRunner, corpus_dir: Path) -> None:
    opening = (
        "We have about 50k labelled support tickets, an in-house ML team and GPUs. "
        "Accuracy must be consistent; it is one stable task and we have 3 months."
    )
    result = runner.invoke(cli, ["guide"], input=f"{opening}\nyes\nwhy?\nthanks\nok\n/quit\n")

    assert result.exit_code == 0, result.output
    assert "(1 of up to 7) Did I get this right" in result.output
    assert result.output.count("Recommendation: Fine-tuning") == 1  # the card once: "thanks" changes nothing
    assert result.output.count("my recommendation stands") == 2
    sources = re.findall(r"^  \[(\d+)\] .+ — \S+\.md › .+$", result.output, flags=re.MULTILINE)
    cited = set(re.findall(r"\[(\d+)\]$", result.output, flags=re.MULTILINE))
    assert sources and cited and cited <= set(sources)  # every reason cites a listed passage
    assert "Total +" in result.output  # "why?" shows the scoring


def test_ask_prints_the_answer_and_numbered_sources(runner: CliRunner, corpus_dir: Path) -> None:
    result = runner.invoke(cli, ["ask", "What is LoRA?"])

    assert result.exit_code == 0, result.output
    assert "Low-Rank Adaptation (LoRA)" in result.stdout and "[1]" in result.stdout
    assert (
        "\nSources:\n  [1] Prompt Engineering vs Fine-Tuning for LLMs — prompt-engineering-vs-fine-tuning-for-llms.md"
        in result.stdout
    )


def test_ask_json_marks_off_topic_questions_unanswerable(runner: CliRunner, corpus_dir: Path) -> None:
    result = runner.invoke(cli, ["ask", "What is the capital of France?", "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answerable"] is False and data["citations"] == []


def test_chat_keeps_history_for_follow_ups(runner: CliRunner, corpus_dir: Path) -> None:
    result = runner.invoke(cli, ["chat", "--json"], input="What is fine-tuning?\nHow long does it take to implement?\n")

    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert "fine-tuning" in second["query"].lower()
    assert "weeks or months" in second["text"]


def test_help_summaries_are_not_cut(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"], terminal_width=80)
    commands = result.output.split("Commands:", 1)[1]
    assert "..." not in commands
    assert "guide     Get a recommendation for your project." in commands


def test_guide_numbers_options_reasks_unreadable_replies_and_restarts_cleanly(
    runner: CliRunner, corpus_dir: Path
) -> None:
    script = "We want an LLM to help our support team.\nbanana\n4\nstart over\n/quit\n"
    result = runner.invoke(cli, ["guide"], input=script)

    assert result.exit_code == 0, result.output
    out = result.output
    assert "1) None   2) A few hundred   3) A few thousand   4) Tens of thousands   5) Not sure" in out
    assert "I could not match “banana”" in out
    assert "Noted: about 30,000 labelled examples (you said: “Tens of thousands”)" in out
    assert "(0 of up to" not in out and "Options:" not in out
    assert out.count("Describe your situation") == 2  # the opening, and again after "start over"


def test_chat_help_clear_and_the_rewritten_question(runner: CliRunner, corpus_dir: Path) -> None:
    script = "/help\nWhat is fine-tuning?\nHow long does it take to implement?\n/clear\n/clear\n/quit\n"
    result = runner.invoke(cli, ["chat"], input=script)

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "/clear  forget the conversation" in out  # /help is not sent as a question
    assert "Searching for: " in out and "fine-tuning" in out.split("Searching for: ", 1)[1].splitlines()[0].lower()
    assert "Conversation cleared" in out and "Nothing to clear." in out


def test_chat_offers_the_guide_for_a_which_should_i_use_question(runner: CliRunner, corpus_dir: Path) -> None:
    result = runner.invoke(cli, ["chat"], input="Should I use prompt engineering or fine-tuning?\n")
    assert result.exit_code == 0, result.output
    assert "`assistant guide` asks about your project" in result.stdout
