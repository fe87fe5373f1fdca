"""Fault injection: for each fault, did the previous index keep answering, and what was on disk afterwards.

Example usage:

    python -m bench.faults                  # every fault, on a copy of the real corpus; writes bench/faults.json
    python -m bench.faults --only lock-held sqlite-mid-file
    python -m bench.faults --out /tmp/faults.json

Each fault runs on its own copy of one prebuilt index (real model, real Chroma store), so faults never
see each other's damage. "Another process" is a child process where the point is a separate process
(the build lock, a killed build) and a second `Store` over the same folder otherwise (generation pins
and the build lock are flock locks, which conflict between open files even inside one process). The
full disk is a tmpfs sized to the index when this runs as root with ``mount``; otherwise a Chroma
writer that fails with ENOSPC. Not part of ``python -m bench``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from assistant import Assistant, Settings
from assistant.embeddings import Embedder
from assistant.errors import AssistantError
from assistant.ingest import Indexer
from assistant.store import Store
from bench.common import CORPUS, ROOT

QUESTION = "What is LoRA?"


@dataclass(frozen=True)
class Outcome:
    """One fault's row."""

    fault: str
    kept_answering: bool  # the previous index answered during/after the fault (or, for damage, after repair)
    generation_before: int
    generation_after: int | None
    seconds: float  # the wall time of the step that met the fault (open, ask or rebuild)
    result: str  # what the engine did or said
    on_disk: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class Case:
    """A fresh copy of the prebuilt index for one fault."""

    root: Path
    embedder: Embedder

    @property
    def settings(self) -> Settings:
        return Settings(corpus_dir=self.root / "corpus", index_dir=self.root / "index")

    def open(self) -> Assistant:
        return Assistant.open(self.settings, embedder=self.embedder)

    def answers(self, bot: Assistant | None = None) -> bool:
        """Whether an assistant (a new one when not given) answers the probe question with a citation."""
        try:
            bot = bot or self.open()
            answer = bot.ask(QUESTION)
        except (AssistantError, OSError) as exc:
            logging.getLogger(__name__).info("no answer: %s", exc)
            return False
        return bool(answer.answerable and answer.citations)

    def generation(self) -> int | None:
        try:
            manifest = Store(self.settings.index_dir).read_manifest()
        except AssistantError:
            return None
        return manifest.generation if manifest else None

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "ASSISTANT_CORPUS": str(self.settings.corpus_dir),
            "ASSISTANT_INDEX": str(self.settings.index_dir),
            **extra,
        }


def on_disk(index_dir: Path) -> dict[str, Any]:
    """What the index folder holds: generations, vector folders, leftovers and size (the model export aside)."""
    chroma = index_dir / "chroma"
    files = [p for p in index_dir.rglob("*") if p.is_file() and "model-onnx" not in p.parts]
    try:
        collections = sorted(c.name for c in Store(index_dir).client.list_collections())
    except BaseException as exc:
        collections = [f"unreadable: {type(exc).__name__}"]
    return {
        "manifest": (index_dir / "manifest.json").is_file(),
        "collections": collections,
        "bm25": sorted(p.name for p in index_dir.glob("bm25-g*")),
        "vector_folders": sum(1 for p in chroma.iterdir() if p.is_dir()) if chroma.is_dir() else 0,
        "broken_copies": sorted(p.name for p in index_dir.glob("chroma.broken-*")),
        "temporaries": sorted(p.name for p in index_dir.glob(".manifest-*"))
        + sorted(p.name for p in index_dir.glob("*.tmp")),
        "mib": round(sum(p.stat().st_size for p in files) / 2**20, 2),
    }


@contextlib.contextmanager
def lock_held(index_dir: Path) -> Iterator[None]:
    """Another process holds the build lock, as a long build does."""
    code = "import fcntl,sys,time\nf=open(sys.argv[1],'a+')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('ok',flush=True)\ntime.sleep(600)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(index_dir / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ok"
        yield
    finally:
        proc.kill()
        proc.wait()


def _timed(fn: Callable[[], Any]) -> tuple[float, Any, str]:
    start = time.perf_counter()
    try:
        value = fn()
        return time.perf_counter() - start, value, ""
    except (AssistantError, OSError) as exc:
        return time.perf_counter() - start, None, f"{type(exc).__name__}: {str(exc)[:160]}"


# -- the faults -------------------------------------------------------------------------------


def f_lock_held(case: Case) -> tuple[bool, float, str]:
    os.environ["ASSISTANT_LOCK_TIMEOUT"] = "2"
    try:
        with lock_held(case.settings.index_dir):
            (case.settings.corpus_dir / "new.md").write_text("# New\n\nEvaluation sets compare approaches.\n")
            seconds, bot, error = _timed(case.open)  # stale corpus, build running elsewhere
            answered = bot is not None and case.answers(bot)
            _, _, refresh_error = _timed(lambda: bot.refresh() if bot else None)
        return answered, seconds, f"open: {error or 'answered from the current generation'}; rebuild: {refresh_error}"
    finally:
        os.environ.pop("ASSISTANT_LOCK_TIMEOUT", None)


def f_no_index_lock_timeout(case: Case) -> tuple[bool, float, str]:
    os.environ["ASSISTANT_LOCK_TIMEOUT"] = "2"
    try:
        (case.settings.index_dir / "manifest.json").rename(case.settings.index_dir / "manifest.away")
        with lock_held(case.settings.index_dir):
            seconds, _, error = _timed(case.open)
        (case.settings.index_dir / "manifest.away").rename(case.settings.index_dir / "manifest.json")
        return case.answers(), seconds, f"open with no manifest: {error}"
    finally:
        os.environ.pop("ASSISTANT_LOCK_TIMEOUT", None)


def f_disk_full_rebuild(case: Case) -> tuple[bool, float, str]:
    bot = case.open()
    seconds, _, error = _timed(lambda: bot.refresh(full=True))
    return case.answers(bot) and case.answers(), seconds, f"page/API rebuild: {error or 'succeeded'}"


def f_kill_9_mid_build(case: Case) -> tuple[bool, float, str]:
    (case.settings.corpus_dir / "big.md").write_text(
        "\n\n".join(f"## Part {i}\n\nParagraph {i} about prompts and tuning." for i in range(200))
    )
    script = textwrap.dedent(
        """
        import os, signal
        from assistant import Settings
        from assistant.ingest import Indexer
        def die(done, total):
            if done >= 64:
                os.kill(os.getpid(), signal.SIGKILL)
        Indexer.from_defaults(Settings.from_env()).build(progress=die)
        """
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script], env=case.env(ASSISTANT_EMBED_BATCH_SIZE="8"), check=False)
    seconds = time.perf_counter() - start
    how = signal.Signals(-proc.returncode).name if proc.returncode < 0 else "not killed: too few chunks"
    return case.answers(), seconds, f"builder exit {proc.returncode} ({how})"


def f_two_external_rebuilds(case: Case) -> tuple[bool, float, str]:
    bot = case.open()
    other = Indexer(case.settings, case.embedder, Store(case.settings.index_dir))
    for i in range(2):
        (case.settings.corpus_dir / f"e{i}.md").write_text(f"# Extra {i}\n\nTemperature {i} controls sampling.\n")
        other.build()
    seconds, answered, _ = _timed(lambda: case.answers(bot))
    return bool(answered), seconds, f"the running assistant switched: {bot.last_switch}"


def _garbage(path: Path, where: str) -> None:
    with open(path, "r+b") as fh:
        fh.seek(0 if where == "start" else path.stat().st_size // 2)
        fh.write(os.urandom(65536) if where == "middle" else b"garbage" * 4096)


def _fresh_process_ask(case: Case) -> tuple[bool, float, str]:
    """Like `assistant ask` in a new process (Chroma caches one store per path and process)."""
    code = (
        "import json; from assistant import Assistant\n"
        "bot = Assistant.open(); a = bot.ask('What is LoRA?')\n"
        "print(json.dumps({'ok': bool(a.answerable and a.citations), 'switch': str(bot.last_switch)}))"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=case.env(), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return False, seconds, f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
    return out["ok"], seconds, out["switch"]


def f_sqlite_mid_file(case: Case) -> tuple[bool, float, str]:
    _garbage(case.settings.index_dir / "chroma" / "chroma.sqlite3", "middle")
    return _fresh_process_ask(case)


def f_sqlite_header(case: Case) -> tuple[bool, float, str]:
    _garbage(case.settings.index_dir / "chroma" / "chroma.sqlite3", "start")
    return _fresh_process_ask(case)


def f_manifest_truncated(case: Case) -> tuple[bool, float, str]:
    (case.settings.index_dir / "manifest.json").write_text('{"format": 1, "generat')
    return _fresh_process_ask(case)


def f_bm25_deleted(case: Case) -> tuple[bool, float, str]:
    for path in case.settings.index_dir.glob("bm25-g*"):
        shutil.rmtree(path)
    return _fresh_process_ask(case)


def f_onnx_truncated(case: Case) -> tuple[bool, float, str]:
    model = case.settings.index_dir / "model-onnx" / "model.onnx"
    model.write_bytes(model.read_bytes()[:1_000_000])
    return _fresh_process_ask(case)


def f_onnx_bit_flips(case: Case) -> tuple[bool, float, str]:
    model = case.settings.index_dir / "model-onnx" / "model.onnx"
    stat = model.stat()
    with open(model, "r+b") as fh:
        for i in range(2000):
            fh.seek(stat.st_size // 10 + i * 40_000)
            fh.write(os.urandom(4))
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # silent: same size, same date
    return _fresh_process_ask(case)


def f_file_unreadable(case: Case) -> tuple[bool, float, str]:
    target = case.settings.corpus_dir / "faq.md"
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    Path.read_bytes = read_bytes  # type: ignore[method-assign]
    try:
        (case.settings.corpus_dir / "new.md").write_text("# New\n\nEvaluation sets compare approaches.\n")
        seconds, report, error = _timed(lambda: case.open().refresh())
    finally:
        Path.read_bytes = real  # type: ignore[method-assign]
    ok = case.answers() and any(p.source == "faq.md" for p in case.open().retrieve("fine-tuning cost", k=10))
    return ok, seconds, error or f"faq.md kept: {report.kept} file(s); removed {report.removed}"


def f_corpus_missing(case: Case) -> tuple[bool, float, str]:
    shutil.move(case.settings.corpus_dir, case.root / "corpus.away")
    seconds, bot, error = _timed(case.open)
    _, _, refresh_error = _timed(lambda: bot.refresh() if bot else None)
    return bot is not None and case.answers(bot), seconds, f"open: {error or 'ok'}; rebuild: {refresh_error}"


def f_bad_corpus_files(case: Case) -> tuple[bool, float, str]:
    corpus = case.settings.corpus_dir
    bomb = "---\na: &a [" + ",".join(['"lol"'] * 9) + "]\n"
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        bomb += f"{cur}: &{cur} [{','.join([f'*{prev}'] * 9)}]\n"
    (corpus / "bomb.md").write_text(bomb + "---\n# Bomb\n\nBody.\n")
    (corpus / "date.md").write_text("---\ndate: 2001-13-45\nx: !!float abc\n---\n# Dated\n\nA note.\n")
    Path(os.fsdecode(os.fsencode(corpus) + b"/caf\xe9.md")).write_bytes(b"# Cafe\n\nNote.\n")
    (corpus / "passwd.md").symlink_to("/etc/passwd")
    seconds, report, error = _timed(lambda: case.open().refresh())
    skipped = ", ".join(sorted(os.fsencode(p.path.name).decode("ascii", "backslashreplace") for p in report.problems))
    return case.answers(), seconds, error or f"indexed {report.documents} documents; skipped and named: {skipped}"


def f_ten_rebuilds(case: Case) -> tuple[bool, float, str]:
    indexer = Indexer(case.settings, case.embedder, Store(case.settings.index_dir))
    start = time.perf_counter()
    for i in range(10):
        (case.settings.corpus_dir / "churn.md").write_text(f"# Churn\n\nVersion {i} of a changing note.\n")
        indexer.build(full=i % 3 == 0)
    return case.answers(), time.perf_counter() - start, "10 rebuilds (every third one full)"


FAULTS: dict[str, Callable[[Case], tuple[bool, float, str]]] = {
    "lock-held": f_lock_held,
    "no-index-lock-timeout": f_no_index_lock_timeout,
    "disk-full-rebuild": f_disk_full_rebuild,
    "kill-9-mid-build": f_kill_9_mid_build,
    "two-external-rebuilds": f_two_external_rebuilds,
    "sqlite-mid-file": f_sqlite_mid_file,
    "sqlite-header": f_sqlite_header,
    "manifest-truncated": f_manifest_truncated,
    "bm25-deleted": f_bm25_deleted,
    "onnx-truncated": f_onnx_truncated,
    "onnx-bit-flips": f_onnx_bit_flips,
    "file-unreadable": f_file_unreadable,
    "corpus-missing": f_corpus_missing,
    "bad-corpus-files": f_bad_corpus_files,
    "ten-rebuilds": f_ten_rebuilds,
}


@contextlib.contextmanager
def full_disk(case: Case) -> Iterator[str]:
    """The index on a tmpfs with almost no room left (root and mount), or a writer that fails with ENOSPC."""
    index = case.settings.index_dir
    size_kib = sum(p.stat().st_size for p in index.rglob("*") if p.is_file()) // 1024 + 2048
    mount = case.root / "tmpfs"
    mount.mkdir()
    mounted = False
    if os.geteuid() == 0 and shutil.which("mount"):
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mount)], capture_output=True, check=False
        )
        mounted = proc.returncode == 0
    if mounted:
        try:
            shutil.copytree(index, mount / "index", symlinks=True)
            shutil.rmtree(index)
            index.symlink_to(mount / "index")
            vfs = os.statvfs(mount)
            filler = max(0, vfs.f_bavail * vfs.f_frsize - 64 * 1024)  # leave 64 KiB: the next build cannot fit
            with open(mount / "filler", "wb") as fh:
                fh.truncate(0)
                fh.write(b"\0" * filler)
            yield "tmpfs with 64 KiB free"
        finally:
            with contextlib.suppress(OSError):
                index.unlink()
            (mount / "filler").unlink(missing_ok=True)
            shutil.copytree(mount / "index", index)
            Store(index)._forget_local_system()  # Chroma keeps the store's files open per path
            gc.collect()  # and the assistants' generation pins
            if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", str(mount)], check=False)
        return
    from chromadb.api.models.Collection import Collection

    real = Collection.add

    def enospc(self: Collection, *args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    Collection.add = enospc  # type: ignore[method-assign]
    try:
        yield "Chroma writer failing with ENOSPC (no tmpfs here)"
    finally:
        Collection.add = real  # type: ignore[method-assign]


def run(names: list[str], work: Path, embedder: Embedder) -> list[Outcome]:
    base = work / "base"
    shutil.copytree(CORPUS, base / "corpus")
    Case(base, embedder).open()  # the index every fault starts from
    outcomes = []
    for name in names:
        root = work / name
        shutil.copytree(base, root, symlinks=True)
        case = Case(root, embedder)
        before = case.generation() or 0
        print(f"… {name}", file=sys.stderr, flush=True)
        if name == "disk-full-rebuild":
            with full_disk(case) as how:
                answered, seconds, result = FAULTS[name](case)
                result = f"{how}: {result}"
                disk = on_disk(case.settings.index_dir)
        else:
            answered, seconds, result = FAULTS[name](case)
            disk = on_disk(case.settings.index_dir)
        outcomes.append(Outcome(name, answered, before, case.generation(), round(seconds, 2), result, disk))
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    """The Markdown table for the README or an issue's closing note."""
    lines = [
        "| fault | kept answering | gen before → after | s | what happened | on disk afterwards |",
        "|---|---|---|---:|---|---|",
    ]
    for o in outcomes:
        d = o.on_disk
        disk = (
            f"manifest {'yes' if d['manifest'] else 'NO'}; {len(d['collections'])} collections, "
            f"{d['vector_folders']} vector folders, {len(d['bm25'])} BM25; broken copies {len(d['broken_copies'])}; "
            f"temporaries {len(d['temporaries'])}; {d['mib']} MiB"
        )
        result = o.result.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {o.fault} | {'yes' if o.kept_answering else '**no**'} | {o.generation_before} → "
            f"{o.generation_after} | {o.seconds} | {result} | {disk} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", nargs="+", choices=sorted(FAULTS), help="run only these faults (their rows replace those in --out)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "faults.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    embedder = Embedder.from_defaults(Settings())
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="faults-", ignore_cleanup_errors=True) as tmp:
        outcomes = run(args.only or list(FAULTS), Path(tmp), embedder)
        rows = [o.to_dict() for o in outcomes]
        if args.only and args.out.exists():  # a partial run replaces its rows in the last full run
            fresh = {r["fault"] for r in rows}
            old = [r for r in json.loads(args.out.read_text(encoding="utf-8"))["faults"] if r["fault"] not in fresh]
            rows = sorted(old + rows, key=lambda r: list(FAULTS).index(r["fault"]))
        data = {"started": started, "seconds": round(time.time() - started, 1), "faults": rows}
        args.out.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
        print(table([Outcome(**r) for r in rows]))
        print(f"\nWrote {args.out}", file=sys.stderr)
    return 0 if all(o.kept_answering for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
