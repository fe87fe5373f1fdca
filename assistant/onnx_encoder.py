"""The embedding model compiled to ONNX, so questions are embedded without importing torch.

torch, transformers and sentence-transformers take ~5 s to import; onnxruntime and tokenizers
take a fraction of that. The index build (which loads torch anyway to embed the corpus) exports
the model's transformer once into the index folder; every later process embeds questions and
answer sentences with the export, and the vectors match sentence-transformers' (mean pooling,
then L2 normalisation) to float precision, so they search the same index.

An export records which weights it came from; one that does not match the model in use, or that
a crash left half-written, is ignored and rebuilt by the next `assistant index`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EmbeddingModelError

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

#: Bumped when the export's layout or meaning changes; older exports are then ignored.
FORMAT = 1
WEIGHTS = "model.safetensors"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def source_fingerprint(source_dir: Path) -> dict[str, object]:
    """What identifies the weights an export was made from: folder, size and modification time."""
    stat = (source_dir / WEIGHTS).stat()
    return {"format": FORMAT, "source": str(source_dir), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def max_seq_length(source_dir: Path) -> int:
    """The token limit sentence-transformers applies to this model (256 for all-MiniLM-L6-v2)."""
    config = source_dir / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", 256))
    return 256


def export(source_dir: Path, target: Path) -> None:
    """Export a sentence-transformers model folder's transformer to ``target`` (needs torch).

    The export is written to a temporary folder beside ``target`` and renamed into place, so a
    crash never leaves a half-written export under the real name.

    Args:
        source_dir: A sentence-transformers model folder with ``model.safetensors``.
        target: The folder to create or replace.

    Raises:
        EmbeddingModelError: The model cannot be loaded or exported.
    """
    import torch
    from transformers import AutoModel

    work = _workdir(target)
    try:
        model = AutoModel.from_pretrained(str(source_dir), attn_implementation="eager").eval()

        class LastHiddenState(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
                out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                return out.last_hidden_state

        example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in INPUTS)
        axes = {"batch": 0, "tokens": 1}
        # The tracer warns about shape checks it freezes; they hold for any batch (mask and ids
        # always have the same length), and the test suite compares the export's vectors with torch's.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(),
                example,
                str(work / "model.onnx"),
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={name: {v: k for k, v in axes.items()} for name in (*INPUTS, "last_hidden_state")},
                opset_version=17,
                dynamo=False,
            )
        shutil.copy2(source_dir / "tokenizer.json", work / "tokenizer.json")
        meta = source_fingerprint(source_dir) | {"max_seq_length": max_seq_length(source_dir)}
        (work / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        _install(work, target)
    except Exception as exc:
        raise EmbeddingModelError(f"Exporting the embedding model from {source_dir} to ONNX failed: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("Exported the embedding model to %s", target)


def _workdir(target: Path) -> Path:
    """A fresh temporary folder beside ``target``; leftovers of crashed exports there are removed first.

    Exports run under the index's build lock, so no other process is writing one meanwhile.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{target.name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))


def _install(work: Path, target: Path) -> None:
    """Put a finished export in place of ``target`` with one rename."""
    work.chmod(0o755)  # mkdtemp makes it private
    shutil.rmtree(target, ignore_errors=True)
    os.replace(work, target)


def copy_export(source: Path, target: Path) -> None:
    """Copy an export to another index folder (hard links where the file system allows), atomically."""
    work = _workdir(target)
    try:
        for name in ("model.onnx", "tokenizer.json", "meta.json"):
            try:
                os.link(source / name, work / name)
            except OSError:  # another file system, or no hard links: copy
                shutil.copy2(source / name, work / name)
        _install(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def is_current(folder: Path, source_dir: Path) -> bool:
    """Whether ``folder`` holds a complete export of the weights in ``source_dir``."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        fingerprint = source_fingerprint(source_dir)
    except (OSError, ValueError):
        return False
    complete = (folder / "model.onnx").is_file() and (folder / "tokenizer.json").is_file()
    return complete and all(meta.get(key) == value for key, value in fingerprint.items())


class OnnxEncoder:
    """Embeds texts with an export made by `export`: mean pooling and L2 normalisation, as the model does."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only; the library logs, never prints
        self._session = onnxruntime.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(meta["max_seq_length"]))
        self._tokenizer.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")  # to the longest in a batch
        self.folder = folder

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit vectors for ``texts``, one row each, in order.

        Args:
            texts: The texts to embed.
            batch_size: Texts per forward pass.

        Returns:
            A float32 array of shape ``(len(texts), dimensions)``.
        """
        import numpy as np

        rows = []
        for start in range(0, len(texts), batch_size):
            # sentence-transformers strips each text before tokenising; so do we, for equal vectors
            encodings = self._tokenizer.encode_batch([t.strip() for t in texts[start : start + batch_size]])
            feed = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            hidden = self._session.run(["last_hidden_state"], feed)[0]
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            rows.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
        return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 0), dtype=np.float32)
