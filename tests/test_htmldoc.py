"""HTML files: read as the Markdown they render to, the page's content only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant import Assistant, Settings
from assistant.chunking import chunk_document
from assistant.corpus import add_file, as_markdown, load_corpus
from assistant.embeddings import Embedder
from assistant.htmldoc import title, to_markdown

HTML_DOCS = Path(__file__).resolve().parent / "fixtures" / "html_docs"


@pytest.fixture(scope="module")
def sync() -> str:
    return to_markdown((HTML_DOCS / "sync.html").read_text(encoding="utf-8"))


def test_only_the_pages_content_is_read(sync: str) -> None:
    assert sync.startswith("# Syncing folders\n\nThe `driftsync run` command copies")
    # The page's header (logo, search form), sidebar, footer, script, style and hidden paragraphs.
    for frame in ("logo", "Search the docs", "Sidebar contents", "Installing driftsync", "authors", "dataLayer"):
        assert frame not in sync
    for hidden in ("font-family", "draft note", "page hides"):
        assert hidden not in sync


def test_headings_lose_their_permalink_and_a_table_of_contents_goes(sync: str) -> None:
    assert [line for line in sync.splitlines() if line.startswith("#")] == [
        "# Syncing folders",
        "## One-way sync",
        "## Conflicts",
        "## Options",
    ]
    assert "¶" not in sync
    assert "- One-way sync" not in sync  # the table of contents: a list of nothing but links


def test_a_line_break_in_the_file_is_a_space_and_br_a_line_break(sync: str) -> None:
    assert "copies every changed file from the source folder to the target folder." in sync
    assert "renames the other to *name.conflict*.\nNothing is ever deleted." in sync


def test_links_keep_a_web_address_only(sync: str) -> None:
    assert "It reads the paths section of the configuration" in sync  # config.html#paths: no use in an answer
    assert "see the [changelog](https://example.org/driftsync/changelog) for" in sync
    assert "[help@example.org](mailto:help@example.org)" in sync


def test_code_is_fenced_in_the_language_its_classes_name(sync: str) -> None:
    assert "```console\n$ driftsync run --one-way ~/photos /mnt/backup/photos\n```" in sync
    assert '```python\nfrom driftsync import Job\n\njob = Job("~/photos", "/mnt/backup/photos")\n' in sync


def test_code_holding_a_fence_gets_another() -> None:
    rendered = to_markdown("<p>Markdown code:</p><pre>```python\nx = 1\n```</pre>")
    assert rendered == "Markdown code:\n\n~~~~\n```python\nx = 1\n```\n~~~~\n"


def test_definition_lists_and_tables_keep_their_shape(sync: str) -> None:
    assert (
        "- **`--dry-run`**: Prints what would be copied and copies nothing.\n"
        "- **`--bandwidth`**: Caps the transfer rate, in kilobytes per second."
    ) in sync
    assert "| Exit code | Meaning |\n| --- | --- |\n| 0 | Everything was copied. |" in sync
    assert "(see `driftsync log \\| less`)" in sync  # a cell's "|" does not split it


def test_terms_sharing_a_definition_and_a_term_with_two_share_one_item() -> None:
    rendered = to_markdown(
        "<dl><dt>-j</dt><dt>--jobs</dt><dd>Runs N jobs.</dd><dt>-v</dt><dd>Verbose.</dd><dd>Repeat it.</dd></dl>"
    )
    assert rendered == "- **-j, --jobs**: Runs N jobs.\n- **-v**: Verbose.\n  Repeat it.\n"


def test_a_headings_permalink_sign_goes_but_a_hash_in_its_name_stays() -> None:
    rendered = to_markdown("<h2>Using C#<a class='headerlink' href='#c'>#</a></h2><h2>Setup ¶</h2>")
    assert rendered == "## Using C#\n\n## Setup\n"


def test_an_objects_signature_is_code_and_a_field_keeps_its_one_colon() -> None:
    # Sphinx's markup for ".. py:function:: spam(eggs, *, ham=None)" with a field list.
    page = (
        '<dl class="py function"><dt class="sig sig-object py" id="spam"><span class="sig-name descname">spam</span>'
        '<span class="sig-paren">(</span><em class="sig-param">eggs</em>, <em class="sig-param">*</em>, '
        '<em class="sig-param">ham=None</em><span class="sig-paren">)</span><a class="headerlink" href="#spam">¶</a></dt>'
        '<dd><p>Cook the eggs.</p><dl class="field-list simple"><dt class="field-odd">Returns<span class="colon">:</span>'
        '</dt><dd class="field-odd"><p>A plate.</p></dd></dl></dd></dl>'
        "<dl><dt><code>$:</code></dt><dd>a colon.</dd></dl>"
    )
    assert to_markdown(page) == (
        "- **`spam(eggs, *, ham=None)`**: Cook the eggs.\n  - **Returns:** A plate.\n\n- **`$:`**: a colon.\n"
    )


def test_a_definition_that_opens_with_code_stands_under_its_term() -> None:
    rendered = to_markdown("<dl><dt>Install</dt><dd><pre>pip install x</pre><p>Then run it.</p></dd></dl>")
    assert rendered.startswith("- **Install**\n\n  ```\n  pip install x\n  ```")
    assert "Then run it." in rendered


def test_a_table_of_names_and_their_text_with_no_header_is_a_definition_list() -> None:
    page = (
        "<table><tr><td><code>query</code></td><td>dump the inputs of a target.</td></tr>"
        "<tr><td><code>browse</code></td><td>browse the graph, like: <pre>ninja -t browse all</pre></td></tr></table>"
        "<table><tr><td>a</td><td>b</td><td>c</td></tr><tr><td>1</td><td>2</td><td>3</td></tr></table>"
    )
    rendered = to_markdown(page)
    assert rendered.startswith(
        "- **`query`**: dump the inputs of a target.\n"
        "- **`browse`**: browse the graph, like:\n\n  ```\n  ninja -t browse all\n  ```\n"
    )
    assert "| a | b | c |\n| --- | --- | --- |\n| 1 | 2 | 3 |" in rendered  # three columns: a table still


def test_a_callouts_title_and_a_summary_open_the_paragraph_after_them() -> None:
    page = (
        "<main><div class='admonition note'><p class='admonition-title'>Note</p><p>The cache is cleared on restart.</p>"
        "</div><details><summary>Advanced options</summary><p>Set <code>--jobs</code> to cap it.</p></details>"
        "<div class='admonition warning'><p class='admonition-title'>Warning</p><ul><li>Back up first.</li></ul></div></main>"
    )
    assert to_markdown(page) == (
        "**Note:** The cache is cleared on restart.\n\n**Advanced options:** Set `--jobs` to cap it.\n\n"
        "**Warning:**\n\n- Back up first.\n"
    )


def test_a_page_without_marked_content_loses_its_header_and_footer() -> None:
    page = (
        "<html><body><header><a href='/'>Home</a> <a href='/blog'>Blog</a> Acme</header>"
        "<h1>Returns</h1><p>Items can be returned within 30 days.</p>"
        "<footer>Imprint and privacy</footer></body></html>"
    )
    assert to_markdown(page) == "# Returns\n\nItems can be returned within 30 days.\n"


def test_a_header_holding_the_pages_heading_stays() -> None:
    page = "<body><header><h1>Returns</h1></header><p>Items can be returned within 30 days.</p></body>"
    assert to_markdown(page) == "# Returns\n\nItems can be returned within 30 days.\n"


def test_a_heading_that_links_back_to_the_contents_stays_a_heading() -> None:
    page = (
        "<main><h2><a class='toc-backref' href='#id1'>Binary Targets</a><a class='headerlink' href='#bt'>¶</a></h2>"
        "<p>Executables and libraries are targets.</p></main>"
    )
    assert to_markdown(page) == "## Binary Targets\n\nExecutables and libraries are targets.\n"


def test_a_paragraph_with_links_and_words_stays() -> None:
    page = "<main><p><a href='a.html'>Install</a> first, then <a href='b.html'>configure</a>.</p></main>"
    assert to_markdown(page) == "Install first, then configure.\n"


def test_text_that_reads_as_markdown_stays_text() -> None:
    assert to_markdown("<p># of retries is 3</p><p>1. is not a list here</p>") == (
        "\\# of retries is 3\n\n\\1. is not a list here\n"
    )


def test_broken_markup_loses_only_itself() -> None:
    rendered = to_markdown("<h1>Title<p>An <b>unclosed bold <i>and italic</p><div><p>Last words.")
    assert rendered.startswith("# Title")
    assert "Last words." in rendered


def test_title_is_the_title_element_else_the_first_h1_read_without_parsing() -> None:
    page = (HTML_DOCS / "sync.html").read_text(encoding="utf-8")
    assert title(page) == "Syncing folders"  # "Syncing folders — driftsync 2.4 documentation": the h1, then the site
    assert (
        title("<title>Path | Node.js Documentation</title><h1>Node.js documentation</h1>")
        == "Path | Node.js Documentation"
    )
    assert title("<title>Python Policy</title><h1>Abstract</h1>") == "Python Policy"
    assert title("<title>Setup guide</title><h1>Setup</h1>") == "Setup guide"  # "guide" goes on the h1's words
    assert title("<body><h1 class='x'>The <code>x</code> tool<a href='#t'>¶</a></h1></body>") == "The x tool"
    assert title("<p>No title here.</p>") is None


def test_a_corpus_reads_html_files_and_its_passages_index_the_rendering(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    shutil.copytree(HTML_DOCS, corpus)
    (corpus / "notes.htm").write_text("<title>Notes</title><p>Short notes.</p>", encoding="utf-8")
    notes, sync_doc = load_corpus(corpus).documents
    assert (sync_doc.source, sync_doc.title) == ("sync.html", "Syncing folders")
    assert (notes.source, notes.title) == ("notes.htm", "Notes")
    rendered = as_markdown(sync_doc)
    chunks = chunk_document(sync_doc)
    assert chunks and all(rendered.text[c.start : c.end] == c.text for c in chunks)
    by_section = {c.section: c.text for c in chunks if c.opens_section}
    assert by_section["Conflicts"].startswith("When both copies of a file changed")


def test_an_html_file_not_in_utf8_is_read_in_the_encoding_it_declares(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    page = (
        "<html><head><meta charset='ISO-8859-1'><title>Café hours</title></head><p>Open from 8 to 18 — à bientôt.</p>"
    )
    (corpus / "latin1.html").write_bytes(page.replace("—", "-").encode("latin-1"))
    (corpus / "legacy.htm").write_bytes("<title>Prices</title><p>A coffee costs 2 € “to go”.</p>".encode("cp1252"))
    (corpus / "notes.md").write_bytes("# Café\n".encode("latin-1"))  # Markdown declares nothing: still refused

    loaded = load_corpus(corpus)
    latin1, legacy = loaded.documents
    assert latin1.title == "Café hours" and "à bientôt" in as_markdown(latin1).text
    # No charset: Windows-1252, as a browser reads it.
    assert as_markdown(legacy).text == "A coffee costs 2 € “to go”.\n"
    assert [p.reason for p in loaded.problems] == ["is not valid UTF-8 (byte 5); re-save it as UTF-8"]


def test_an_uploaded_html_file_is_checked_as_html(tmp_path: Path) -> None:
    doc = add_file(tmp_path, "menu.html", "<title>Menu</title><p>Crêpes</p>".encode("cp1252"))
    assert doc.title == "Menu" and as_markdown(doc).text == "Crêpes\n"


def test_an_html_corpus_answers_with_citations(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "docs"
    shutil.copytree(HTML_DOCS, corpus)
    bot = Assistant.open(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder=embedder)
    answer = bot.ask("What happens when a file changed on both sides?")
    assert answer.answerable
    assert "keeps the newer one and renames the other" in answer.text
    assert answer.citations[0].source == "sync.html"
    assert answer.citations[0].section == "Conflicts"  # the page's h1 is its title, as a Markdown file's
