"""The embedding model compiled to ONNX, so questions are embedded without importing torch.

torch, transformers and sentence-transformers take ~5 s to import; onnxruntime and tokenizers
take a fraction of that. The index build (which loads torch anyway to embed the corpus) exports
the model's transformer once into the index folder; every later process embeds questions and
answer sentences with the export, and the vectors match sentence-transformers' (mean pooling,
then L2 normalisation) to float precision, so they search the same index.

An export records which weights it came from, the size and SHA-256 of its ``model.onnx``, and the
vector it gives a fixed probe text. One that does not match the model in use, that a crash left
half-written, whose file was changed since (truncated, overwritten: checked by size, then by
checksum whenever the file's modification time moved), or that no longer reproduces its probe
vector when loaded (a flipped bit gives NaN or wrong vectors), is not used and is exported again.
"""

from __future__ import annotations

import hashlib
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
FORMAT = 2
WEIGHTS = "model.safetensors"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")

#: Embedded at export and on every load; a loaded export must give the recorded vector back.
PROBE_TEXT = "Prompt engineering or fine-tuning: a known sentence to check the export with."
#: Largest difference allowed between the recorded and the reproduced probe vector. Exports agree
#: with torch to within 1e-5 (tests/test_onnx_encoder.py); ten times that is still far below what
#: a damaged weight changes.
PROBE_TOLERANCE = 1e-4


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
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # the library logs, never prints
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
        probe = OnnxEncoder(work, check=False).encode([PROBE_TEXT])[0]
        meta |= _file_record(work / "model.onnx") | {"probe": [round(float(x), 7) for x in probe]}
        (work / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        _install(work, target)
    except Exception as exc:
        raise EmbeddingModelError(f"Exporting the embedding model from {source_dir} to ONNX failed: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("Exported the embedding model to %s", target)


def _file_record(path: Path) -> dict[str, object]:
    """Size, modification time and SHA-256 of the exported model file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    stat = path.stat()
    return {"onnx_bytes": stat.st_size, "onnx_mtime_ns": stat.st_mtime_ns, "onnx_sha256": digest.hexdigest()}


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
        try:  # the 86 MiB model is linked; the small files are copied, so each folder owns its records
            os.link(source / "model.onnx", work / "model.onnx")
        except OSError:  # another file system, or no hard links: copy
            shutil.copy2(source / "model.onnx", work / "model.onnx")
        for name in ("tokenizer.json", "meta.json"):
            shutil.copy2(source / name, work / name)
        _install(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def is_current(folder: Path, source_dir: Path, verify: bool = False) -> bool:
    """Whether ``folder`` holds a complete, unchanged export of the weights in ``source_dir``.

    Args:
        folder: The export.
        source_dir: The model folder it should come from.
        verify: Also check ``model.onnx``'s SHA-256 when its modification time is not the one
            recorded at export (0.2 s for the 86 MiB file; skipped when the file was not touched).
    """
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        fingerprint = source_fingerprint(source_dir)
        onnx = (folder / "model.onnx").stat()
    except (OSError, ValueError):
        return False
    complete = (folder / "tokenizer.json").is_file() and onnx.st_size == meta.get("onnx_bytes")
    if not (complete and all(meta.get(key) == value for key, value in fingerprint.items())):
        return False
    if verify and onnx.st_mtime_ns != meta.get("onnx_mtime_ns"):
        try:
            return _file_record(folder / "model.onnx")["onnx_sha256"] == meta.get("onnx_sha256")
        except OSError:
            return False
    return True


class OnnxEncoder:
    """Embeds texts with an export made by `export`: mean pooling and L2 normalisation, as the model does."""

    def __init__(self, folder: Path, check: bool = True) -> None:
        """Load an export.

        Args:
            folder: The export's folder.
            check: Embed the probe text and compare with the vector recorded at export.

        Raises:
            EmbeddingModelError: The export does not reproduce its probe vector (damaged weights).
        """
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
        if check:
            self._check(meta)

    def _check(self, meta: dict[str, object]) -> None:
        import numpy as np

        expected = np.asarray(meta.get("probe") or [], dtype=np.float32)
        got = self.encode([PROBE_TEXT])[0]
        if expected.shape != got.shape or not np.all(np.isfinite(got)):
            error = "no finite vector" if expected.shape == got.shape else "no recorded probe vector"
        elif (diff := float(np.abs(got - expected).max())) > PROBE_TOLERANCE:
            error = f"its probe vector is off by {diff:.2g}"
        else:
            return
        raise EmbeddingModelError(f"The ONNX export in {self.folder} is damaged ({error}); it will be exported again")

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
