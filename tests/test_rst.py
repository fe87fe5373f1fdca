"""reStructuredText files: read as the Markdown they render to, Sphinx's own markup included."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant import Assistant, Settings
from assistant.chunking import chunk_document
from assistant.corpus import as_markdown, load_corpus
from assistant.embeddings import Embedder
from assistant.rst import title, to_markdown

RST_DOCS = Path(__file__).resolve().parent / "fixtures" / "rst_docs"


@pytest.fixture(scope="module")
def usage() -> str:
    return to_markdown((RST_DOCS / "usage.rst").read_text(encoding="utf-8"))


def test_sections_are_headings_by_depth_and_hidden_markup_goes(usage: str) -> None:
    assert [line for line in usage.splitlines() if line.startswith("#")] == [
        "# Using tidectl",
        "## Installing",
        "## Configuration",
        "### Options",
    ]
    # The comment, the target, the table of contents, the toctree's page names and ".. only::" show nothing.
    for hidden in ("Sphinx-style page", "_usage", "maxdepth", "install\n", "html", "contents"):
        assert hidden not in usage


def test_sphinx_roles_are_their_text(usage: str) -> None:
    assert "Install `tidectl` with pip" in usage  # :program:`tidectl`
    assert "from `~/.config/tidectl.toml`" in usage  # :file: keeps its "~"
    assert "The `TIDECTL_HOME` variable" in usage
    assert "see the reference for every variable" in usage  # :ref:`the reference <reference-env>`
    assert ":program:" not in usage and ":ref:" not in usage


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        (":func:`~os.path.join`", "`join`"),
        (":py:meth:`!Queue.get`", "`Queue.get`"),
        (":variable:`CMAKE_DISABLE_FIND_PACKAGE_<PackageName>`", "`CMAKE_DISABLE_FIND_PACKAGE_<PackageName>`"),
        (":prop_tgt:`EXECUTABLE <TYPE>`", "`EXECUTABLE`"),
        (":doc:`Installing <install>`", "Installing"),
        ("`spam`:samp:", "`spam`"),
    ],
)
def test_a_role_shows_what_sphinx_shows(source: str, shown: str) -> None:
    assert to_markdown(f"Use {source} here.\n") == f"Use {shown} here.\n"


def test_code_directives_and_literal_blocks_are_fenced_code(usage: str) -> None:
    assert "```console\n$ pip install tidectl\n$ tidectl --version\n```" in usage
    assert 'Tide levels are read from the cache:\n\n```\n>>> tidectl.level("Brest")\n4.2\n```' in usage


def test_text_directives_are_their_body_under_what_sphinx_prints(usage: str) -> None:
    assert "Added in version 2.1. Wheels for ARM64 Linux." in usage
    assert "**Note:** Settings given on the command line win over the file." in usage
    assert "`tidectl.sync(station, *, days=7)`\n\nDownload the tide tables of `station`" in usage


def test_lists_and_tables_keep_their_markdown_shape(usage: str) -> None:
    assert "- `-q, --quiet`: Print nothing but errors.\n- `--days N`: How many days of tables to keep." in usage
    assert "| Station | Datum |\n|---|---|\n| Brest | Chart datum (CD) |\n| Dover | Ordnance datum |" in usage


def test_include_and_raw_read_nothing(usage: str) -> None:
    assert "root:" not in usage and "<script>" not in usage


def test_the_roles_and_directives_it_adds_are_gone_after(usage: str) -> None:
    from docutils.core import publish_doctree

    tree = publish_doctree(":program:`x`\n", settings_overrides={"report_level": 5, "_disable_config": True})
    assert tree.next_node(lambda n: n.tagname == "problematic") is not None  # docutils alone knows no :program:


def test_broken_markup_loses_only_itself() -> None:
    text = "Title\n=====\n\nA *broken emphasis and an ``unclosed literal.\n\n.. unknown-directive::\n\nLast words.\n"
    rendered = to_markdown(text)
    assert rendered.startswith("# Title\n\n")
    assert "Last words." in rendered


def test_title_is_the_first_section_title_read_without_parsing() -> None:
    assert (
        title("..  comment\n\n" + "*" * 16 + "\n The ``x`` tool \n" + "*" * 16 + "\n\nIntro\n=====\n") == "The `x` tool"
    )
    assert title("No title here.\n\n----\n\nText.\n") is None


def test_a_corpus_reads_rst_files_and_its_passages_index_the_rendering(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    shutil.copytree(RST_DOCS, corpus)
    (doc,) = load_corpus(corpus).documents
    assert (doc.source, doc.title) == ("usage.rst", "Using tidectl")
    rendered = as_markdown(doc)
    chunks = chunk_document(doc)
    assert chunks and all(rendered.text[c.start : c.end] == c.text for c in chunks)
    by_section = {c.section: c.text for c in chunks if c.opens_section}
    assert by_section["Installing"].startswith("Install `tidectl` with pip")


def test_an_rst_corpus_answers_with_citations(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "docs"
    shutil.copytree(RST_DOCS, corpus)
    bot = Assistant.open(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder=embedder)
    answer = bot.ask("How do I install tidectl?")
    assert answer.answerable
    assert "pip install tidectl" in answer.text
    assert answer.citations[0].source == "usage.rst"
    assert answer.citations[0].section == "Installing"
