"""The wheel, installed into a fresh virtualenv outside the repository, answers from an empty folder.

The fresh venv reuses this venv's installed dependencies (torch, Chroma, LlamaIndex...) through a
``.pth`` line, so nothing is downloaded; the package itself comes only from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_wheel_in_a_fresh_venv_answers_from_an_empty_folder(tmp_path: Path) -> None:
    # Build from a copy, so the build's scratch folders never land in the shared checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in ("assistant", "corpus"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_") and k != "PYTHONPATH"}
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            ".",
        ],
        src,
        env,
    )
    log = built.stdout + built.stderr
    assert "Building wheel" in log and "project.license" not in log  # setuptools' deprecation of the table form
    assert "Package would be ignored" not in log
    (wheel,) = (tmp_path / "dist").glob("askdocs_cited-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    shipped = {n.removeprefix("assistant/default_corpus/") for n in names if n.startswith("assistant/default_corpus/")}
    assert shipped == {p.name for p in (ROOT / "corpus").iterdir() if p.suffix in (".md", ".txt")}
    assert {"assistant/advisor.yaml", "assistant/__main__.py"} <= names
    assert {f"assistant/data/{p.name}" for p in (ROOT / "assistant" / "data").iterdir() if p.is_file()} <= names
    assert "Name: askdocs-cited" in metadata and "License-Expression: Apache-2.0" in metadata

    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(fresh)
    site = next((fresh / "lib").glob("python3.*/site-packages"))
    (site / "reuse-installed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = str(fresh / "bin" / "python")
    # --ignore-installed: never touch the dependencies' venv; --no-deps: they are all there already.
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-index",
            "--no-deps",
            "--ignore-installed",
            str(wheel),
        ],
        tmp_path,
        env,
    )

    empty = tmp_path / "empty"
    empty.mkdir()
    data = tmp_path / "data"
    env.update(XDG_DATA_HOME=str(data), HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    where = _run([python, "-c", "import assistant; print(assistant.__file__)"], empty, env).stdout.strip()
    assert where.startswith(str(site))

    asked = _run([python, "-m", "assistant", "ask", "--json", "What is LoRA?"], empty, env)
    answer = json.loads(asked.stdout)
    assert answer["answerable"] and answer["citations"] and "[1]" in answer["text"]

    script = (
        "from assistant import Assistant, Settings\n"
        "s = Settings.from_env()\n"
        "print(s.corpus_dir); print(s.index_dir)\n"
        "print(Assistant.open().ask('How long does fine-tuning take?').answerable)\n"
    )
    corpus_dir, index_dir, answerable = _run([python, "-c", script], empty, env).stdout.split()
    assert Path(corpus_dir) == site / "assistant" / "default_corpus"
    assert Path(index_dir) == data / "askdocs-cited" / "index" and (Path(index_dir) / "manifest.json").is_file()
    assert answerable == "True"
    assert list(empty.iterdir()) == []  # nothing written where the app runs
    installed = {p.relative_to(site) for p in site.rglob("*") if "__pycache__" not in p.parts}
    assert not [
        p
        for p in installed
        if p.parts[0] not in ("assistant",)
        and "askdocs_cited" not in p.parts[0]
        and p.name != "reuse-installed-deps.pth"
    ], "something was written into site-packages"
    assert {p.name for p in (site / "assistant" / "default_corpus").iterdir()} == shipped
