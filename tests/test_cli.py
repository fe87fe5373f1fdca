"""The `assistant` command line, through click's CliRunner."""

from __future__ import annotations

import json
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
        "Full rebuild: 2 added, 0 updated, 0 removed, 0 unchanged; 4 chunks embedded (4 in the index)" in first.stdout
    )

    second = runner.invoke(cli, ["index"])

    assert second.exit_code == 0
    assert second.stdout == "Index is up to date: 2 files unchanged, nothing embedded (4 chunks).\n"


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
        f"Error: Corpus folder {tmp_path / 'nowhere'} does not exist. Create it and add .md or .txt files, "
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
    assert result.stderr.endswith("Error: The question is empty. Ask something, for example: What is LoRA?\n")


def test_guide_asks_then_recommends_with_sources(runner: CliRunner, corpus_dir: Path) -> None:
    opening = (
        "We have about 50k labelled support tickets, an in-house ML team and GPUs. "
        "Accuracy must be consistent; it is one stable task and we have 3 months."
    )
    result = runner.invoke(cli, ["guide"], input=f"{opening}\nyes\nwhy?\n/quit\n")

    assert result.exit_code == 0, result.output
    assert "(1 of up to 7) Did I get this right" in result.output
    assert "Recommendation: fine tuning" in result.output
    assert "[1] Prompt Engineering vs Fine-Tuning for LLMs" in result.output
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
