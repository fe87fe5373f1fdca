"""The refusal decision: does the corpus cover a question well enough to answer it?"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .retrieval import Passage

#: Terms only questions about this corpus use. A question naming one is answered from a weak match.
DOMAIN_TERMS = re.compile(
    r"\b(?:prompt engineering|prompting|prompt design|fine[- ]?tuning|finetuning|fine[- ]?tuned models?|lora|"
    r"low-rank|llms?|language models?|chatgpt|hyper-?parameters?|overfit\w*|dropout|regulari[sz]ation|"
    r"cross-?validation|training data|labell?ed data|retrain\w*|custom data|hybrid|synergy|combin\w+ (?:them|both)|"
    r"(?:both|the two|these|each) (?:approach|method|technique|strateg)\w*)\b",
    re.IGNORECASE,
)

#: Words that point at the corpus but also at other things ("fine-tune my golf swing", "a writing prompt").
AMBIGUOUS_TERMS = re.compile(r"\b(?:prompts?|fine[- ]?tunes?|finetunes?|datasets?|epochs?|gpt[\w-]*)\b", re.IGNORECASE)


@dataclass(frozen=True)
class RefusalPolicy:
    """Decides whether the corpus covers a question, from the best passage's cosine similarity.

    The similarity a question needs depends on what it names:

    ========================  =========  =======================================================
    the question names        threshold  why
    ========================  =========  =======================================================
    a `DOMAIN_TERMS` term     0.20       "what's regularization for?" tops at 0.21
    an `AMBIGUOUS_TERMS` one  0.30       "what do we have to invest in to fine-tune?" tops at 0.32
    neither                   0.36       "What is reinforcement learning from games like chess?"
                                         tops at 0.32; "How do I train a dog?" at 0.21
    ========================  =========  =======================================================

    Calibrated with all-MiniLM-L6-v2 on bench/questions.jsonl (57 in scope: none refused) and
    bench/offtopic.txt (40 off topic: 3 answered, all of them near-domain: "How do I fine tune my
    car engine?" 0.32, "How do I fine-tune my golf swing?" 0.31, "What's a good writing prompt for
    kids?" 0.35). Similarities are from `Passage.similarity`, the cosine between question and passage.

    The threshold is chosen from the words the user typed, not from a rewritten follow-up: the
    rewrite may add the previous subject ("What is the capital of France?" after a question on
    fine-tuning becomes "... for fine-tuning?", similarity 0.34), and that added term must not
    lower the bar.
    """

    with_domain_term: float = 0.20
    with_ambiguous_term: float = 0.30
    without_domain_term: float = 0.36

    def answerable(self, query: str, passages: Sequence[Passage], asked: str | None = None) -> bool:
        """Whether the passages answer ``query`` well enough to try.

        Args:
            query: The standalone question the passages were retrieved for.
            passages: The retrieved passages, with their similarities.
            asked: The question as the user typed it, when ``query`` is a rewrite of it.

        Returns:
            True when the best similarity reaches the threshold for the terms the user named.
        """
        if not passages:
            return False
        best = max(p.similarity for p in passages)
        named = asked if asked is not None else query
        if DOMAIN_TERMS.search(named):
            threshold = self.with_domain_term
        elif AMBIGUOUS_TERMS.search(named):
            threshold = self.with_ambiguous_term
        else:
            threshold = self.without_domain_term
        return best >= threshold
