"""No corpus file takes the engine down: hostile names, front matter, links and folders are skipped and named."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from assistant import Assistant, Settings
from assistant.corpus import add_file, load_corpus, parse_front_matter
from assistant.embeddings import Embedder
from assistant.errors import CorpusFileError

#: The 429-byte "billion laughs" header from the security report: 9 levels of 9 aliases.
ALIAS_BOMB = (
    "---\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    + "title: Billion laughs\n---\n# Bomb\n\nBody about prompt engineering.\n"
)

BAD_FRONT_MATTER = {
    "date.md": "---\ndate: 2001-13-45\ntitle: Dated\n---\n# Dated\n\nA note about LoRA.\n",
    "bigint.md": f"---\nn: 1{'0' * 5000}\ntitle: Big number\n---\n# Big\n\nA note about adapters.\n",
    "float.md": "---\nx: !!float abc\nt: !!timestamp 2001-02-30\ntitle: Float\n---\n# Float\n\nA note on prompts.\n",
}


def _names(problems: tuple[CorpusFileError, ...]) -> dict[str, str]:
    return {p.path.name: p.reason for p in problems}


def test_front_matter_values_the_engine_does_not_use_cannot_crash_it(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    for name, text in BAD_FRONT_MATTER.items():
        (root / name).write_text(text, encoding="utf-8")

    corpus = load_corpus(root)

    assert corpus.problems == ()
    assert {d.source: d.title for d in corpus.documents} == {
        "bigint.md": "Big number",
        "date.md": "Dated",
        "float.md": "Float",
    }


def test_front_matter_reads_only_the_keys_it_uses_as_text() -> None:
    meta, _ = parse_front_matter("---\ntitle: 2024\nkind: faq\nsummary: ~\nextra: {a: [1, 2]}\n---\nBody")
    assert meta == {"title": "2024", "kind": "faq"}
    with pytest.raises(ValueError, match="'title' must be text"):
        parse_front_matter("---\ntitle: [a, b]\n---\nBody")
    with pytest.raises(ValueError, match=r"not valid YAML \(line 3: "):
        parse_front_matter("---\ntitle: ok\nsummary: 'unclosed\n---\nBody")


def test_an_alias_bomb_is_refused_in_microseconds_and_kilobytes(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB.encode()) < 600
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "bomb.md").write_text(ALIAS_BOMB, encoding="utf-8")
    (root / "good.md").write_text("# Good\n\nPrompts are instructions.\n", encoding="utf-8")

    tracemalloc.start()
    started = time.perf_counter()
    corpus = load_corpus(root)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # yaml.safe_load took 37 s and 3.4 GB on this file; generous bounds for a loaded 2-core machine
    assert seconds < 2.0 and peak < 20_000_000, (seconds, peak)
    assert [d.source for d in corpus.documents] == ["good.md"]
    assert "anchors or aliases" in _names(corpus.problems)["bomb.md"]
    deep = "---\nx: " + "[" * 200 + "]" * 200 + "\ntitle: t\n---\nBody\n"
    with pytest.raises(ValueError, match="deeper than"):
        parse_front_matter(deep)
    with pytest.raises(ValueError, match="over the 64,000 limit"):
        parse_front_matter("---\nsummary: " + "x" * 70_000 + "\n---\nBody")


def test_a_link_out_of_the_corpus_is_not_followed_but_one_inside_is(tmp_path: Path) -> None:
    outside = tmp_path / "secret.md"
    outside.write_text("# Secret\n\nroot:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    root = tmp_path / "corpus"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "real.md").write_text("# Real\n\nLoRA adapters.\n", encoding="utf-8")
    (root / "passwd.md").symlink_to("/etc/passwd")
    (root / "secret.md").symlink_to(outside)
    (root / "alias.md").symlink_to(root / "docs" / "real.md")

    corpus = load_corpus(root)

    assert sorted(d.source for d in corpus.documents) == ["alias.md", "docs/real.md"]
    reasons = _names(corpus.problems)
    assert set(reasons) == {"passwd.md", "secret.md"}
    assert all("outside the corpus folder" in r for r in reasons.values())
    assert not any("root:x:0" in d.text for d in corpus.documents)


def test_odd_names_are_skipped_and_named_on_one_safe_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "good.md").write_text("# Good\n\nPrompts are instructions.\n", encoding="utf-8")
    Path(os.fsdecode(os.fsencode(root) + b"/caf\xe9.md")).write_bytes(b"# Cafe\n\nLoRA note.\n")
    forged = "a.md: is empty\nIndex is healthy: 0 problems found. x.md"
    (root / forged).write_text("# Forged\n\nText.\n", encoding="utf-8")
    (root / "evil\u202egpj.md").write_text("# RTL\n\nText.\n", encoding="utf-8")
    (root / "..dots...md").write_text("# Dots\n\nText.\n", encoding="utf-8")
    (root / ".upload-123.tmp").write_text("in progress", encoding="utf-8")  # our own temporary: silent

    with caplog.at_level(logging.WARNING, logger="assistant.corpus"):
        corpus = load_corpus(root)

    assert [d.source for d in corpus.documents] == ["good.md"]
    messages = sorted(str(p) for p in corpus.problems)
    assert len(messages) == 4 and all("\n" not in m and "\u202e" not in m for m in messages)
    assert any("caf\\xe9.md: its name is not valid UTF-8" in m for m in messages)
    assert any("a.md: is empty\\x0aIndex is healthy" in m for m in messages)
    assert any("..dots...md: is hidden" in m for m in messages)
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_utf16_files_are_read(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "notes.md").write_bytes("# Notes\n\nLoRA trains small adapter matrices.\n".encode("utf-16"))
    (root / "broken.md").write_bytes(b"\xff\xfe" + "# Half".encode("utf-16-le") + b"\x00")

    corpus = load_corpus(root)

    assert [(d.source, d.title) for d in corpus.documents] == [("notes.md", "Notes")]
    assert "LoRA trains small adapter matrices." in corpus.documents[0].text
    assert "not valid UTF-16" in _names(corpus.problems)["broken.md"]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop root's file access override")
def test_an_unreadable_folder_is_named(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "secret").mkdir(parents=True)
    (root / "secret" / "a.md").write_text("# A\n\nLoRA.\n", encoding="utf-8")
    (root / "good.md").write_text("# Good\n\nPrompts.\n", encoding="utf-8")
    (root / "secret").chmod(0)
    probe = textwrap.dedent(
        f"""
        from pathlib import Path
        from assistant.corpus import load_corpus
        c = load_corpus(Path({str(root)!r}))
        print([d.source for d in c.documents])
        print([str(p) for p in c.problems])
        """
    )
    try:
        proc = subprocess.run(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        (root / "secret").chmod(0o755)
    if proc.returncode != 0 and "setpriv" in proc.stderr:
        pytest.skip(f"setpriv cannot drop capabilities here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    docs, problems = proc.stdout.strip().splitlines()
    assert docs == "['good.md']"
    assert "secret: folder cannot be read (Permission denied)" in problems


def test_uploads_refuse_bombs_and_impossible_names_and_are_written_like_other_files(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    started = time.perf_counter()
    with pytest.raises(CorpusFileError, match="anchors or aliases"):
        add_file(root, "bomb.md", ALIAS_BOMB.encode(), 100_000)
    assert time.perf_counter() - started < 2.0
    with pytest.raises(CorpusFileError, match="cannot be written to the corpus folder .*nothing was added"):
        add_file(root, "A" * 300 + ".md", b"# Long\n\nName.\n", 100_000)
    with pytest.raises(CorpusFileError, match="control or text-direction"):
        add_file(root, "a\nb.md", b"# x\n\ny\n", 100_000)
    doc = add_file(root, "dated.md", BAD_FRONT_MATTER["date.md"].encode(), 100_000)

    assert doc.title == "Dated"
    assert sorted(p.name for p in root.iterdir()) == ["dated.md"]
    mode = stat.S_IMODE((root / "dated.md").stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_one_of_each_bad_file_leaves_the_engine_answering(
    mini_corpus: Path, settings: Settings, embedder: Embedder
) -> None:
    for name, text in BAD_FRONT_MATTER.items():
        (mini_corpus / name).write_text(text, encoding="utf-8")
    (mini_corpus / "bomb.md").write_text(ALIAS_BOMB, encoding="utf-8")
    Path(os.fsdecode(os.fsencode(mini_corpus) + b"/caf\xe9.md")).write_bytes(b"# Cafe\n\nLoRA note.\n")
    (mini_corpus / "passwd.md").symlink_to("/etc/passwd")

    bot = Assistant.open(settings, embedder=embedder)

    report = bot.refresh()
    assert sorted(p.path.name.encode("utf-8", "surrogateescape") for p in report.problems) == [
        b"bomb.md",
        b"caf\xe9.md",
        b"passwd.md",
    ]
    assert bot.status().documents == 5
    assert "lora.md" in {p.source for p in bot.retrieve("What is LoRA?", k=3)}
    assert not any("root:x" in p.text for p in bot.retrieve("root x 0 0 root /root /bin/bash", k=5))


@hyp_settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"ab:-[]{}&*!|>'\"#?, ", "\n", "\n  ", "!!float", "2001-13-45", "title", "kind", "\t"]),
        max_size=40,
    ).map("".join)
)
def test_any_front_matter_either_parses_or_is_a_named_value_error(header: str) -> None:
    try:
        meta, _ = parse_front_matter(f"---\n{header}\n---\nBody")
    except ValueError as exc:
        assert str(exc).startswith("front matter")
    else:
        assert all(isinstance(v, str) for v in meta.values()) and set(meta) <= {"title", "kind", "summary"}
