"""Chunking along the documents' structure, with exact offsets and stable ids."""

from __future__ import annotations

from pathlib import Path

from assistant.chunking import MAX_CHUNK_CHARS, chunk_document, sentence_spans, sentence_texts
from assistant.corpus import SourceDocument, load_corpus
from assistant.markup import LiteralBlock, headings, literal_blocks, numbered_headings, table_cells, tables

ROOT = Path(__file__).resolve().parent.parent


def _document(folder: Path, name: str, text: str) -> SourceDocument:
    """``text`` written to ``folder/name`` and read back as the corpus's one document."""
    (folder / name).write_text(text, encoding="utf-8")
    (doc,) = load_corpus(folder).documents
    return doc


def _as_text_and_markdown(folder: Path, stem: str, text: str) -> tuple[SourceDocument, SourceDocument]:
    """The same ``text`` read as a text file (``stem.txt``) and as Markdown (``stem.md``)."""
    for suffix in (".txt", ".md"):
        (folder / f"{stem}{suffix}").write_text(text, encoding="utf-8")
    by_source = {doc.source: doc for doc in load_corpus(folder).documents}
    return by_source[f"{stem}.txt"], by_source[f"{stem}.md"]


def _chunks():
    corpus = load_corpus(ROOT / "corpus")
    return {doc.source: (doc, chunk_document(doc)) for doc in corpus.documents}


def test_every_chunk_is_an_exact_span_of_its_file() -> None:
    for doc, chunks in _chunks().values():
        assert chunks
        for chunk in chunks:
            assert doc.text[chunk.start : chunk.end] == chunk.text
            assert chunk.text == chunk.text.strip()
            assert "---" not in chunk.text  # front matter never leaks into a passage


def test_faq_chunks_hold_one_question_with_its_answer() -> None:
    doc, chunks = _chunks()["faq.md"]
    assert len(chunks) == 6
    for chunk in chunks:
        question, _, answer = chunk.text.partition("\n\n")
        assert question.endswith("?") and chunk.section == question
        assert answer and "?" not in answer.splitlines()[0][-1:]


def test_article_chunks_follow_sections_and_stay_tight() -> None:
    _, chunks = _chunks()["prompt-engineering-vs-fine-tuning-for-llms.md"]
    sections = {c.section for c in chunks}
    assert (
        "Comparing Prompt Engineering and Fine-Tuning Approaches > Implementation Timeline > Fine-Tuning Timeline"
        in sections
    )
    assert all(len(c.text) <= MAX_CHUNK_CHARS for c in chunks)
    lora = [c for c in chunks if "Low-Rank Adaptation (LoRA)" in c.text]
    assert len(lora) == 1 and lora[0].section.endswith("Hyperparameter Configuration")
    training = next(c for c in chunks if c.section.endswith("Training Process"))
    assert "Several techniques help maintain balance:" in training.text and "- Dropout" in training.text


def test_chunk_ids_are_stable_and_unique() -> None:
    first = {s: [c.id for c in chunks] for s, (_, chunks) in _chunks().items()}
    second = {s: [c.id for c in chunks] for s, (_, chunks) in _chunks().items()}
    assert first == second
    all_ids = [i for ids in first.values() for i in ids]
    assert len(all_ids) == len(set(all_ids))


def test_sentence_spans_split_sentences_and_list_items() -> None:
    text = "One thing. Two things! Three?\n- item a\n- item b"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "One thing.",
        "Two things!",
        "Three?",
        "- item a",
        "- item b",
    ]


def test_a_sentence_may_open_with_inline_code_or_bold_text() -> None:
    text = "Prune might fail to free space. `prune` works in steps.\n**Note** that it locks. See e.g. `forget` there."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "Prune might fail to free space.",
        "`prune` works in steps.",
        "**Note** that it locks.",
        "See e.g. `forget` there.",  # no sentence end after an abbreviation
    ]


def test_a_sentence_may_open_with_a_link_to_code() -> None:
    text = "It does not always use the DNS protocol. [`dns.lookup()`][] uses the system. [Node](x) is fine."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "It does not always use the DNS protocol.",
        "[`dns.lookup()`][] uses the system.",
        "[Node](x) is fine.",
    ]


def test_fenced_code_is_one_unit_and_never_a_heading(tmp_path: Path) -> None:
    text = (
        "# Mounting\n\nUse this command to mount it:\n\n```console\n# mkdir /mnt/restic\n\n"
        "$ restic mount /mnt/restic\nNow serving. Use another terminal.\n```\n\nThat is all."
    )
    doc = _document(tmp_path, "mount.md", text)
    (chunk,) = chunk_document(doc)  # "# mkdir" inside the code is no heading
    code = text[text.index("```") : text.rindex("```") + 3]
    assert [chunk.text[s:e] for s, e in sentence_spans(chunk.text)] == [
        "Use this command to mount it:",
        code,  # blank line and full stops inside code split nothing
        "That is all.",
    ]


def test_indented_code_is_one_unit_and_a_list_items_indented_paragraph_is_not_code(tmp_path: Path) -> None:
    text = (
        "Repairing\n\nThe first step is to repair the index:\n\n    $ restic repair index\n\n"
        "    loading indexes...\n    # done. Saved.\n\nThis ensures that the index is correct.\n\n"
        "- Run a check first.\n\n    It reads every pack. Then it reports.\n"
    )
    doc = _document(tmp_path, "troubleshooting.txt", text)

    chunks = chunk_document(doc)

    code = "    $ restic repair index\n\n    loading indexes...\n    # done. Saved."
    assert doc.title == "Troubleshooting"  # "# done." inside the code is no heading, no title
    assert [c.section for c in chunks] == [""] * len(chunks)
    body = "\n\n".join(c.text for c in chunks)
    assert code in body  # with its indent: the indent is what makes it code
    spans = [body[s:e] for s, e in sentence_spans(body)]
    assert code.lstrip() in spans  # one unit: blank line and full stops inside it split nothing
    assert "It reads every pack." in spans and "Then it reports." in spans  # the item's paragraph is prose


def test_a_text_files_lines_in_capitals_are_its_headings(tmp_path: Path) -> None:
    body = (
        "ACME LTD. - REMOTE WORK\n\nWho may work remotely.\n\nCORE HOURS\n\nCore hours are 10:00 to 15:00.\n\n"
        "HOME-OFFICE STIPEND\n\nYou get GBP 400 once.\n\nNOTE: CLAIM IT IN CLAIMPOINT.\n\nClaim within 3 months.\n"
        "\nTS_SKIP_SLOW\n\nSet it to 1 to skip the slow tests.\n"
    )
    text_doc, markdown_doc = _as_text_and_markdown(tmp_path, "remote", body)

    sections = {c.text: c.section for c in chunk_document(text_doc)}

    assert sections["Core hours are 10:00 to 15:00."] == "Core hours"  # in sentence case, as Markdown's
    assert sections["Set it to 1 to skip the slow tests."] == "TS_SKIP_SLOW"  # a name in code, as written
    assert sections["Who may work remotely."] == "Acme ltd. - remote work"
    # a line in capitals that ends as a sentence is shouting, not a heading
    stipend = "You get GBP 400 once.\n\nNOTE: CLAIM IT IN CLAIMPOINT.\n\nClaim within 3 months."
    assert sections[stipend] == "Home-office stipend"
    assert {c.section for c in chunk_document(markdown_doc)} == {""}  # Markdown marks its headings with #


def test_a_text_files_title_line_and_numbered_sections(tmp_path: Path) -> None:
    body = (
        "Troubleshooting\n\nRestic is designed to be error resistant.\n\n\n1. Find out what is damaged\n\n"
        "Always check the repository first.\n\n\n2. Backup the repository\n\nCopy the index folder.\n\n"
        "Before you start:\n\n1. Stop the backups\n\n2. Unmount the repository\n"
    )
    doc = _document(tmp_path, "troubleshooting.txt", body)

    sections = {c.text: c.section for c in chunk_document(doc)}

    assert doc.title == "Troubleshooting"
    assert sections["Restic is designed to be error resistant."] == ""  # the title line is no text of it
    assert sections["Always check the repository first."] == "Find out what is damaged"
    # a numbered line before its next item is a list item, blank lines or not
    assert sections[
        "Copy the index folder.\n\nBefore you start:\n\n1. Stop the backups\n\n2. Unmount the repository"
    ] == ("Backup the repository")


def test_numbered_lines_are_headings_only_where_every_numbered_paragraph_is_one() -> None:
    steps = ["1. Find out what is damaged", "", "Check it.", "", "2. Backup the repository", "", "Copy it."]
    howto = [
        "4. When done push your branch to your git server.",
        "",
        "git push yourgit textual",
        "",
        "6. Push a backup of your branch, then",
        "",
        "git checkout master",
    ]
    loose = ["Before you start:", "", "1. Stop the backups", "", "2. Unmount the repository"]

    assert numbered_headings(steps) == {0: "Find out what is damaged", 4: "Backup the repository"}
    assert numbered_headings(steps + ["", *loose]) == {0: "Find out what is damaged", 4: "Backup the repository"}
    assert numbered_headings(howto) == {}  # steps and their commands, one step without its full stop
    assert numbered_headings(["    1. Indented", "", "prose"]) == {}
    command = ["1. Run the check", "", "```", "1. no heading in code", "```", "", "Then read its output."]
    assert numbered_headings(command, literal_blocks(command)) == {}  # a step and its command


def test_a_hash_line_amid_a_text_files_paragraph_is_a_comment(tmp_path: Path) -> None:
    body = "# Howto\n\n## Setup\n\nRebase often:\ngit checkout textual\n## edit something\ngit rebase master\n"
    text_doc, markdown_doc = _as_text_and_markdown(tmp_path, "howto", body)

    assert [c.section for c in chunk_document(text_doc)] == ["Setup"]  # a heading opens its paragraph
    assert [c.section for c in chunk_document(markdown_doc)] == ["Setup", "edit something"]  # CommonMark


def test_a_text_files_tilde_underlined_heading_and_code_after_slightly_indented_prose(tmp_path: Path) -> None:
    body = (
        "\n util-linux regression tests\n ~~~~~~~~~~~~~~~~~~~~~~~~~~~\n\n"
        " Include a test with each important bugfix.\n\n Run all tests:\n\n\t# cd tests\n\t# ./run.sh\n\n"
        " or run 'make clean' as root.\n\n- an item\n\n continues the item\n\n\tand so does this\n"
    )
    text_doc, markdown_doc = _as_text_and_markdown(tmp_path, "howto-tests", body)

    chunks = chunk_document(text_doc)

    # "~~~" under a line of text underlines it, where Markdown would open code there to the file's end
    assert {c.section for c in chunks} == {"util-linux regression tests"}
    assert "Include a test with each important bugfix." in chunks[0].text
    # the commands after a paragraph indented one space are code (no "# cd tests" heading); in a
    # list, an indented paragraph goes on with its item
    code = LiteralBlock(8, 9, "indented")
    assert literal_blocks(body.split("\n"), plain=True) == {8: code, 9: code}
    # in Markdown, as CommonMark reads it, "~~~" opens code that runs to the end
    assert literal_blocks(body.split("\n"))[2] == LiteralBlock(2, len(body.split("\n")) - 1, "fenced")
    assert {c.section for c in chunk_document(markdown_doc)} == {""}


def test_a_github_alert_is_read_under_its_title() -> None:
    text = "> [!WARNING]\n> Never delete the index while it is in use.\n\n[!NOTE] outside a quote is text."

    assert sentence_texts(text, "Repair") == [
        "Repair: Warning: Never delete the index while it is in use.",  # as GitHub shows it
        "Repair: [!NOTE] outside a quote is text.",
    ]


def test_literal_blocks_code_and_comments_hold_no_heading() -> None:
    lines = [
        "Run it:",  # 0
        "```bash",
        "# not a heading",
        "",
        "```",  # 4
        "",
        "    $ tool check",  # 6: indented code, after a blank line
        "",
        "    # done.",  # 8
        "",
        "- an item",  # 10
        "",
        "      indented under an item, no code",
        "",
        "## A heading",  # 14
        "<!-- YAML",
        "# not a heading either",
        "-->",  # 17
        "<!-- one line -->",
        "<!-- a comment --> with text after it is no comment block",
        "<!-- never closed is text",  # 20
        "",
        "[RFC 5952]: https://www.rfc-editor.org/rfc/rfc5952",  # 22: link reference definitions
        "[`path.sep`]: #pathsep 'The separator'",
        "",
        "[Note]: this line is a sentence, no definition",  # 25
        "~~~",
        "# never closed",
    ]

    literal = literal_blocks(lines)

    blocks = (
        LiteralBlock(1, 4, "fenced"),
        LiteralBlock(6, 8, "indented"),
        LiteralBlock(15, 17, "comment"),
        LiteralBlock(18, 18, "comment"),
        LiteralBlock(22, 23, "definitions"),
        LiteralBlock(26, 27, "fenced"),
    )
    assert literal == {i: b for b in blocks for i in range(b.first, b.last + 1)}
    assert [(i, name) for i, _, name in headings(lines)] == [(14, "A heading")]


def test_html_comments_and_link_definitions_are_neither_text_nor_headings(tmp_path: Path) -> None:
    text = (
        "# Path\n\n<!-- source_link=lib/path.js -->\n\n## `path.basename(path)`\n\n"
        "<!-- YAML\nadded: v0.1.25\nchanges:\n  - version: v6.0.0\n    pr-url: https://example.org/pull/5348\n"
        "# no heading\n-->\n\nThe `path.basename()` method returns the last portion of a path.\n\n"
        "[`path.sep`]: #pathsep\n[RFC 5952]: https://www.rfc-editor.org/rfc/rfc5952\n"
    )
    doc = _document(tmp_path, "path.md", text)

    chunks = chunk_document(doc)

    assert [(c.section, c.text) for c in chunks] == [
        ("`path.basename(path)`", "The `path.basename()` method returns the last portion of a path.")
    ]
    assert chunks[0].opens_section  # right under its heading: the comment between is no text


def test_a_myst_callouts_fences_are_no_text_and_its_body_a_passage_apart(tmp_path: Path) -> None:
    text = (
        "# Caching\n\n## Where is the cache stored\n\n"
        "```{caution}\n:class: dropdown\nThe layout of the cache may change between any two versions.\n```\n\n"
        "Use `pip cache dir` to find the cache directory.\n\n"
        "````{tab} Linux\nOn Linux it is under your home folder:\n\n```bash\n~/.cache/pip\n```\n````\n\n"
        "```{code-block} python\nprint('a code directive stays code')\n```\n\n"
        ":::{note}\nA colon fence holds text too.\n:::\n"
    )
    doc = _document(tmp_path, "caching.md", text)

    chunks = chunk_document(doc)

    assert [(c.text, c.opens_section) for c in chunks] == [
        ("The layout of the cache may change between any two versions.", True),  # no option line
        ("Use `pip cache dir` to find the cache directory.", False),  # after the callout, not under the heading
        ("On Linux it is under your home folder:\n\n```bash\n~/.cache/pip\n```", False),  # its code is code
        ("```{code-block} python\nprint('a code directive stays code')\n```", False),
        ("A colon fence holds text too.", False),
    ]
    assert {c.section for c in chunks} == {"Where is the cache stored"}
    assert sentence_texts(chunks[0].text, chunks[0].section) == [
        "Where is the cache stored: The layout of the cache may change between any two versions."
    ]


def test_a_myst_callout_never_closed_and_its_literal_blocks() -> None:
    lines = ["```{note}", "Text, not code.", "", "```{warning}", ":class: tip", "Still text.", "```"]

    assert literal_blocks(lines) == {
        0: LiteralBlock(0, 0, "directive"),  # never closed: its body is text to the end
        3: LiteralBlock(3, 4, "directive"),
        4: LiteralBlock(3, 4, "directive"),
        6: LiteralBlock(6, 6, "directive"),
    }


def test_a_long_indented_code_block_is_never_cut(tmp_path: Path) -> None:
    code = "\n".join(f"    $ restic backup /data/{i:03d} --tag nightly" for i in range(40))
    text = f"Backups\n\nRun these, one per folder:\n\n{code}\n\nThen check the repository. It takes a while.\n"
    doc = _document(tmp_path, "backups.txt", text)

    chunks = chunk_document(doc)

    assert len(code) > MAX_CHUNK_CHARS
    assert [c.text for c in chunks if "restic backup" in c.text] == [f"Run these, one per folder:\n\n{code}"]


def test_a_long_code_block_is_one_passage_and_the_prose_after_it_stays_prose(tmp_path: Path) -> None:
    code = "```\n" + "\n".join(f"$ restic backup /data/{i:03d} --tag nightly" for i in range(40)) + "\n```"
    text = f"# Backups\n\nRun these, one per folder:\n\n{code}\n\nThen check the repository. It takes a while."
    doc = _document(tmp_path, "backups.md", text)

    chunks = chunk_document(doc)

    assert len(code) > MAX_CHUNK_CHARS
    # never cut, and with the line that introduces it
    assert [c.text for c in chunks if "```" in c.text] == [f"Run these, one per folder:\n\n{code}"]
    last = chunks[-1].text
    assert [last[s:e] for s, e in sentence_spans(last)][-2:] == ["Then check the repository.", "It takes a while."]


def test_a_list_item_too_long_for_a_passage_is_cut_between_its_sentences(tmp_path: Path) -> None:
    sentences = [f"Clause {i} of the licence asks you to keep the notice of every file you copy." for i in range(12)]
    item = "* **Third-party code:** " + " ".join(sentences)
    doc = _document(tmp_path, "legal.md", f"# Legal\n\n{item}\n\n* A short item.\n")

    chunks = chunk_document(doc)

    assert len(item) > MAX_CHUNK_CHARS
    body = [c.text for c in chunks if "Clause" in c.text]
    assert len(body) > 1 and all(len(t) <= MAX_CHUNK_CHARS for t in body)
    # every passage ends where a sentence does: none is left quoting half a sentence
    assert all(t.split("\n\n")[0].endswith("of every file you copy.") for t in body)
    assert " ".join(body).count("Clause") == len(sentences)


def test_setext_headings_are_headings(tmp_path: Path) -> None:
    text = (
        "Restoring\n=========\n\nUse restore.\n\nFrom a snapshot\n---------------\n\nPick one.\n\n"
        "A paragraph that ends\nwith a rule below\n\n---\n\nMore."
    )
    doc = _document(tmp_path, "restore.md", text)

    assert doc.title == "Restoring"
    assert [(c.section, c.text) for c in chunk_document(doc)] == [
        ("", "Use restore."),  # the title is no section
        ("From a snapshot", "Pick one.\n\nA paragraph that ends\nwith a rule below\n\n---\n\nMore."),
    ]


def test_a_comment_in_code_is_no_title_and_no_section(tmp_path: Path) -> None:
    text = "```sh\n# install it first\npip install restic\n```\n\nUser guide\n==========\n\nRun it.\n"
    doc = _document(tmp_path, "guide.md", text)

    assert doc.title == "User guide"
    assert [c.section for c in chunk_document(doc)] == ["", ""]


def test_a_list_stays_with_its_lead_in_line_even_in_bold(tmp_path: Path) -> None:
    para = " ".join(f"Sentence {i} says how the pages of an app are laid out in the navigation." for i in range(3))
    items = "\n".join(f"- Group the pages under heading {i} so people find them quickly" for i in range(12))
    text = f"# Navigation\n\n## Layout\n\n{para}\n\n**Many pages → Sidebar:**\n{items}\n"
    doc = _document(tmp_path, "nav.md", text)

    chunks = [c.text for c in chunk_document(doc)]

    assert chunks[0] == para  # the lead-in is not left behind at the end of the paragraph
    assert chunks[1].startswith("**Many pages → Sidebar:**\n- Group the pages under heading 0")


def test_a_lead_in_line_goes_with_the_code_or_list_it_introduces(tmp_path: Path) -> None:
    para = " ".join(f"Sentence {i} says how a chat app streams its replies to the page." for i in range(6))
    code = "```python\n" + "\n".join(f"step_{i} = client.stream(prompt, part={i})" for i in range(12)) + "\n```"
    items = "\n".join(f"- option {i} changes how often the app reruns its script" for i in range(12))
    text = (
        f"# Chat\n\n## Streaming\n\n{para} With OpenAI, you can pass the stream directly:\n\n{code}\n\n"
        f"## Options\n\n{para}\n\nThese options apply:\n\n{items}\n"
    )
    doc = _document(tmp_path, "chat.md", text)

    chunks = chunk_document(doc)

    # Cut between the paragraph and the code: the paragraph's last line comes with the code ...
    assert chunks[0].text == para
    assert chunks[1].text.startswith("With OpenAI, you can pass the stream directly:\n\n```python")
    # ... and between blocks, a paragraph of its own that introduces a list comes with the list.
    options = [c.text for c in chunks if c.section == "Options"]
    assert options[0] == para and options[1].startswith("These options apply:\n\n- option 0")
    for chunk in chunks:  # no chunk ends with a line that introduces what follows
        assert not chunk.text.rstrip().endswith(":"), chunk.text


def test_a_chunk_knows_whether_it_starts_right_under_its_heading(tmp_path: Path) -> None:
    para = " ".join(f"Sentence {i} says how a chat app streams its replies to the page." for i in range(9))
    code = "```python\n" + "\n".join(f"step_{i} = client.stream(prompt, part={i})" for i in range(12)) + "\n```"
    text = (
        f"# Chat\n\nWhat this page covers.\n\n## Basic chat structure\n\n{code}\n\n{para}\n\n## Streaming\n\n{para}\n"
    )
    doc = _document(tmp_path, "chat.md", text)

    chunks = chunk_document(doc)

    assert [(c.section, c.text[:9], c.opens_section) for c in chunks] == [
        ("", "What this", False),  # under the title: no heading of a section over it
        ("Basic chat structure", "```python", True),
        ("Basic chat structure", "Sentence ", False),  # the same section, further down
        ("Streaming", "Sentence ", True),
    ]


PRICES = (
    "There are three plans.\n\n"
    "| Plan | Price per month | Notes |\n"
    "| --- | ---: | --- |\n"
    "| Free | $0 | For trying it out. Limited to one user. |\n"
    "| Pro | $12 | Billed yearly \\| or monthly. |\n"
    "\nAll plans include TLS."
)


def test_a_table_row_is_one_sentence_embedded_under_its_columns_names() -> None:
    spans = [PRICES[s:e] for s, e in sentence_spans(PRICES)]
    assert "| Free | $0 | For trying it out. Limited to one user. |" in spans  # never split at its full stop

    assert sentence_texts(PRICES, "Plans > Pricing") == [
        "Pricing: There are three plans.",
        "Pricing: Plan: Free; Price per month: $0; Notes: For trying it out. Limited to one user.",
        "Pricing: Plan: Pro; Price per month: $12; Notes: Billed yearly | or monthly.",  # "\|" is in its cell
        "Pricing: All plans include TLS.",
    ]  # the header and delimiter rows are not sentences of their own


def test_a_table_without_outer_pipes_is_read_as_a_table() -> None:
    text = (
        "Plans compared. See below.\n\n"
        "Plan | Price per month | Notes\n--- | ---: | ---\nFree | $0 | For trying it out. Limited to one user.\n"
        "Pro | $12 | Billed yearly.\n\nAll plans include TLS. Prices include tax.\n"
    )
    spans = [text[s:e] for s, e in sentence_spans(text)]
    assert "Free | $0 | For trying it out. Limited to one user." in spans  # a row is one sentence, as GFM reads it
    assert "Plans compared." in spans and "All plans include TLS." in spans  # the prose around it is not

    assert sentence_texts(text, "Pricing") == [
        "Pricing: Plan: Free; Price per month: $0; Notes: For trying it out. Limited to one user.",
        "Pricing: Plan: Pro; Price per month: $12; Notes: Billed yearly.",
        "Pricing: All plans include TLS.",
        "Pricing: Prices include tax.",
    ]  # the header and delimiter rows are not sentences ("See below." is too short to be one)
    # A sentence holding a pipe is no header: its cells do not match the delimiter row's
    assert tables("Pipe it: a | b.\n--- | --- | ---\n") == []
    assert tables("Then run it.\n---\n") == []  # a heading's underline is no delimiter row


def test_rows_whose_header_the_passage_lacks_belong_to_no_table() -> None:
    text = "| Pro | $12 | yearly |\n| Team | $40 | monthly |"  # a passage cut from a long table's middle
    assert tables(text) == []
    assert table_cells("| a | b \\| c |") == ["a", "b | c"]


def test_chunks_cut_from_a_long_table_keep_its_header(tmp_path: Path) -> None:
    rows = "".join(
        f"| `--option-{i}` | What option {i} changes, in a sentence long enough to count. |\n" for i in range(15)
    )
    doc = _document(tmp_path, "options.md", f"# Options\n\n| Option | Description |\n|---|---|\n{rows}")

    chunks = chunk_document(doc)

    assert len(chunks) > 1 and all(len(c.text) <= MAX_CHUNK_CHARS for c in chunks)
    assert chunks[0].text.startswith("| Option | Description |\n|---|---|\n") and chunks[0].table_header == ""
    for chunk in chunks[1:]:
        assert chunk.text.startswith("| `--option-") and chunk.table_header == "| Option | Description |\n|---|---|"
        assert sentence_texts(chunk.text, chunk.section, chunk.table_header)[0].startswith("Option: `--option-")
    assert sentence_texts(chunks[1].text, chunks[1].section)[0].startswith("| `--option-")  # no header, no names


def test_a_chunk_that_starts_at_a_tables_first_row_keeps_its_header(tmp_path: Path) -> None:
    long_row = "| `--first` | " + "A description long enough to fill a chunk of its own. " * 11 + "|\n"
    doc = _document(tmp_path, "o.md", f"# Options\n\n| Option | Description |\n|---|---|\n{long_row}")

    header, first = chunk_document(doc)

    assert header.text == "| Option | Description |\n|---|---|"  # header and row do not fit one chunk
    assert first.text.startswith("| `--first` |") and first.table_header == header.text
