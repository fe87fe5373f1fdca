"""How well guided mode reads facts from situation descriptions: `python -m bench.guide_facts`.

`bench/guide_facts.jsonl` holds situation descriptions, each with the facts it states
(factor -> value) and the factors it does not state. The extractor reads every description with
rules only (facts that count at once) and with rules plus embedding similarity (the similarity
facts are *tentative*: the dialog asks the user to confirm them before they count). Reported:

- unstated: facts read for a factor the description does not state (target 0 for rule facts);
- wrong: facts read for a stated factor with another value;
- precision: correct facts read / all known facts read;
- recall: stated facts read with the right value / stated facts.

Writes `bench/guide_facts.json`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.situation import FACTORS, Fact, SituationExtractor

HERE = Path(__file__).resolve().parent
CASES = HERE / "guide_facts.jsonl"
OUT = HERE / "guide_facts.json"


def cases(path: Path = CASES) -> list[dict[str, Any]]:
    """The labelled descriptions; each names every factor once, as stated or not stated."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        case = json.loads(line)
        named = set(case["stated"]) | set(case["not_stated"])
        if named != set(FACTORS) or set(case["stated"]) & set(case["not_stated"]):
            raise ValueError(f"{path.name} line {n}: name each factor exactly once in stated or not_stated")
        out.append(case)
    return out


def score(read: Callable[[str], list[Fact]], labelled: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision, recall and every miss of ``read`` over the labelled descriptions."""
    correct = unstated = wrong = stated = 0
    misses: list[dict[str, Any]] = []
    for case in labelled:
        facts = {f.factor: f for f in read(case["text"]) if f.known}
        stated += len(case["stated"])
        for factor, fact in facts.items():
            expected = case["stated"].get(factor)
            if expected is None:
                unstated += 1
                misses.append({"text": case["text"], "factor": factor, "read": fact.value, "expected": None,
                               "quote": fact.quote, "source": fact.source})  # fmt: skip
            elif fact.value != expected:
                wrong += 1
                misses.append({"text": case["text"], "factor": factor, "read": fact.value, "expected": expected,
                               "quote": fact.quote, "source": fact.source})  # fmt: skip
            else:
                correct += 1
        for factor, expected in case["stated"].items():
            if factor not in facts:
                misses.append({"text": case["text"], "factor": factor, "read": None, "expected": expected})
    read_total = correct + unstated + wrong
    return {
        "descriptions": len(labelled),
        "stated_facts": stated,
        "facts_read": read_total,
        "correct": correct,
        "unstated": unstated,
        "wrong_value": wrong,
        "precision": round(correct / read_total, 3) if read_total else 1.0,
        "recall": round(correct / stated, 3) if stated else 1.0,
        "misses": misses,
    }


def run(with_similarity: bool = True) -> dict[str, Any]:
    """Score the rules alone and, optionally, rules plus similarity (tentative facts) with MiniLM."""
    labelled = cases()
    rules = SituationExtractor()
    result: dict[str, Any] = {"rules": score(rules.extract, labelled)}
    if with_similarity:
        from assistant.config import Settings
        from assistant.embeddings import Embedder

        embedder = Embedder.from_defaults(Settings())
        both = SituationExtractor(embedder.embed_query)
        started = time.perf_counter()
        result["rules_and_similarity"] = score(both.extract, labelled)
        result["rules_and_similarity"]["seconds"] = round(time.perf_counter() - started, 2)
        tentative = [m for m in result["rules_and_similarity"]["misses"] if m.get("source") == "similarity"]
        result["rules_and_similarity"]["tentative_misses"] = len(tentative)
    return result


def main() -> None:
    result = run(with_similarity="--rules-only" not in sys.argv)
    OUT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, r in result.items():
        print(
            f"{name:22} {r['descriptions']} descriptions, {r['stated_facts']} stated facts: "
            f"precision {r['precision']:.3f}, recall {r['recall']:.3f}, "
            f"unstated facts read {r['unstated']}, wrong values {r['wrong_value']}"
        )
    print(f"wrote {OUT.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
