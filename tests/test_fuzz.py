"""Fuzz the API against its own OpenAPI spec with schemathesis (bounded run)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from assistant.api import create_app
from assistant.corpus import load_corpus
from assistant.engine import Assistant


def test_api_never_fails_on_generated_input(bot: Assistant) -> None:
    """Every built-in check, on valid and invalid input: no 5xx, responses and statuses as documented,
    valid requests accepted, invalid ones rejected."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(bot))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/v1/ask",
        "/v1/retrieve",
        "/v1/chat/completions",
        "/healthz",
        "/v1/models",
    }
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case: schemathesis.Case) -> None:
                response = case.call(timeout=120)  # a loaded 2-core machine, not a failure
                case.validate_response(response)  # all checks
                assert "Traceback" not in response.text

            try:
                check()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # an operation without input has no invalid input


@given(blobs=st.lists(st.binary(max_size=3000), min_size=1, max_size=4))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_corpus_reader_survives_arbitrary_bytes(blobs: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "good.md").write_text("# Good\n\nPrompts are instructions.\n", encoding="utf-8")
        for i, blob in enumerate(blobs):
            (root / f"odd{i}.md").write_bytes(blob)
        corpus = load_corpus(root, max_file_bytes=2000)
    assert "good.md" in [d.source for d in corpus.documents]
    assert len(corpus.documents) + len(corpus.problems) == len(blobs) + 1
