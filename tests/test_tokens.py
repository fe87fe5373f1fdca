"""Cutting a quoted answer to a token budget (`assistant.tokens`), with the real tokenizer."""

from __future__ import annotations

import pytest

from assistant import Settings
from assistant.tokens import TokenCounter, fit

ANSWER = (
    "Fine-tuning retrains a model on your own data. [1] It takes weeks. [1]\n\n"
    "Prompt engineering changes only the instructions: [2]\n"
    "- Write clear context\n"
    "- Give examples [2]\n\n"
    "LoRA trains a small set of new parameters. [3]"
)


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter(Settings().embed_model_path)


def test_a_text_within_the_budget_is_left_alone(counter: TokenCounter) -> None:
    assert fit(ANSWER, counter.count(ANSWER), counter) is None


@pytest.mark.parametrize("budget", range(16, 56, 3))  # the first marked sentence is 16 tokens, all 56
def test_the_cut_keeps_whole_cited_sentences_within_the_budget(counter: TokenCounter, budget: int) -> None:
    cut = fit(ANSWER, budget, counter)
    assert cut is not None
    assert counter.count(cut.text) <= budget
    assert ANSWER.startswith(cut.text) and cut.text.endswith("]")
    assert cut.citations == int(cut.text.rsplit("[", 1)[1].rstrip("]"))
    # the longest such prefix: the next marker's end would not fit
    following = ANSWER.find("]", len(cut.text)) + 1
    assert counter.count(ANSWER[:following]) > budget


def test_a_list_is_kept_whole_or_not_at_all(counter: TokenCounter) -> None:
    for budget in range(1, counter.count(ANSWER)):
        cut = fit(ANSWER, budget, counter)
        assert cut is not None
        assert ("- Write clear context" in cut.text) == ("- Give examples [2]" in cut.text)


def test_a_budget_smaller_than_the_first_sentence_cuts_at_that_many_tokens(counter: TokenCounter) -> None:
    cut = fit(ANSWER, 3, counter)
    assert cut is not None
    assert cut.text == "Fine-tuning" and counter.count(cut.text) == 3 and cut.citations == 0
