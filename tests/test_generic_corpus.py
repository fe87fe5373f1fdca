"""The engine on a corpus it was never tuned for: the invented employee handbook in bench/corpora.

Everything the engine knows about a corpus is read off its index (`CorpusProfile`): these tests
check that the product corpus's subject leaks into nothing, and that refusals, hard-wrapped text
and the answer-shape rules hold on the handbook through the same code.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant, Settings
from assistant.chunking import sentence_spans, sentence_texts
from assistant.compose import ExtractiveComposer, SentenceCache
from assistant.embeddings import Embedder
from assistant.markup import unquoted
from assistant.profile import CorpusProfile
from assistant.refusal import Background, RefusalPolicy
from assistant.retrieval import Passage

ROOT = Path(__file__).resolve().parent.parent
HANDBOOK = ROOT / "bench" / "corpora" / "handbook"
KETTLE = ROOT / "tests" / "fixtures" / "kettle"
#: The composer's own weight; the rendering tests hold one passage, so it orders nothing there.
RANK_WEIGHT = ExtractiveComposer.rank_weight
#: The generic engine: none of these may name the product corpus's subject in code.
ENGINE_MODULES = [
    "answer.py", "chunking.py", "compose.py", "engine.py", "followup.py", "llm.py",
    "profile.py", "refusal.py", "retrieval.py", "validation.py", "ingest.py", "store.py", "markup.py", "rst.py",
    "htmldoc.py",
]  # fmt: skip
PRODUCT_WORDS = re.compile(r"prompt engineering|prompting|fine[- ]?tun|lora\b|hyperparameter", re.IGNORECASE)


@pytest.fixture(scope="module")
def handbook(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Assistant]:
    index = tmp_path_factory.mktemp("handbook-index")
    yield Assistant.open(Settings(corpus_dir=HANDBOOK, index_dir=index), embedder=embedder)


def compose(embedder: Embedder, question: str, passages: list[Passage]) -> tuple[str, list[Passage]]:
    """The extractive answer to ``question`` from ``passages``, with the default composer."""
    return ExtractiveComposer(SentenceCache(embedder)).compose(question, embedder.embed_query(question), passages)


def whole(text: str, source: str, title: str, section: str = "") -> Passage:
    """A passage holding all of ``text``, found first (the composer's tests hold one passage)."""
    return Passage("id", text, source, title, section, 0, len(text), 1.0, 0.6)


def code_strings(path: Path) -> list[str]:
    """Every string literal and name in a module, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.append(node.value)
        elif isinstance(node, ast.Name):
            out.append(node.id)
    return out


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_the_engine_names_no_corpus_subject_in_code(module: str) -> None:
    found = [s for s in code_strings(ROOT / "assistant" / module) if PRODUCT_WORDS.search(s)]
    assert found == []


def test_the_profile_is_read_off_the_handbook_index(handbook: Assistant) -> None:
    profile = handbook.retriever.profile

    assert "Leave and Time Off" in profile.titles and "Handbook FAQ" in profile.titles
    assert all(q.endswith("?") for q in profile.examples())  # the FAQ's own questions
    assert profile.examples()[0] in profile.questions
    assert profile.known("leav", "leave") == "leav" and profile.known("quantize", "quantization") is None
    assert profile.coverage("annual leave allowance") == 1.0
    assert profile.coverage("quantization of transformer weights") < 0.4


def test_a_shortened_subject_is_named_as_the_titles_name_it(handbook: Assistant) -> None:
    profile = handbook.retriever.profile  # one title is "Remote work and equipment"

    assert profile.subject_name("remote") == "Remote work"
    assert profile.subject_name("remote work") is None  # already the whole name
    assert profile.subject_name("pizza") is None and profile.subject_name("the") is None


def test_a_subject_name_completes_a_phrase_and_never_prefixes_it() -> None:
    # A follow-up "What about sick leave?" must not be searched as the company's name plus the subject.
    profile = CorpusProfile.from_passages([{"title": "Acme Corp Sick Leave and Parental Leave"}], {})

    assert profile.subject_name("sick leave") is None
    assert profile.subject_name("parental") == "Parental Leave"


def test_example_questions_keep_a_headings_capitals_where_it_opens_with_them() -> None:
    profile = CorpusProfile(
        titles=("Acme API",),
        headings=("Rate limits", "API keys", "CORE HOURS", "Pack Size"),
        questions=(),
        doc_freq={},
    )

    assert profile.examples(4) == (
        "What do the documents say about rate limits?",
        "What do the documents say about API keys?",  # not "aPI keys"
        "What do the documents say about CORE HOURS?",
        "What do the documents say about Pack Size?",  # title case: not "pack Size"
    )


def test_example_questions_span_the_documents_and_prefer_prose_headings() -> None:
    api = [{"title": "File system", "section": "`fs.open(path, flags)`"}] * 9 + [
        {"title": "File system", "section": "File system flags"}
    ] * 2
    guide = [{"title": "Events", "section": "Error events"}, {"title": "Events", "section": "Events > Once"}] * 3
    profile = CorpusProfile.from_passages([*api, *guide, {"title": "Path", "section": "`path.join([...paths])`"}], {})

    assert profile.examples() == (  # one from each document first; code only where a page has nothing else
        "What do the documents say about file system flags?",
        "What do the documents say about error events?",
        "What do the documents say about `path.join([...paths])`?",
    )
    assert profile.headings == (
        "File system flags",
        "Error events",
        "`path.join([...paths])`",
        "`fs.open(path, flags)`",
        "Once",
    )


def test_everyday_words_the_corpus_does_not_use_say_nothing_against_coverage(handbook: Assistant) -> None:
    profile = handbook.retriever.profile
    unused = ("really", "big", "thing", "sure")  # everyday English words the handbook never uses
    assert not any(profile.known(profile.terms(w)[0], w) for w in unused)  # the premise
    assert profile.known("realli", "really") is None  # a word of English is not a typo ...
    assert profile.known("matern", "maternity") is None  # ... of "matter", however close
    # Typos are written as the handbook writes the word; words of English are left alone.
    assert profile.spelt("can i report harrasment anonimously") == "can i report harassment anonymous"
    assert profile.spelt("Is maternity pay enhanced?") == "Is maternity pay enhanced?"

    assert profile.coverage("Is it really a big thing? Are you sure?") == 1.0  # nothing but everyday words
    assert profile.coverage("Is annual leave really a big thing?") == 1.0
    assert profile.coverage("Is sourdough really a big thing?") < 0.4  # "sourdough" names a subject
    assert profile.coverage("Is the guitar tuning argument convincing?") == 0.0


def test_the_handbook_is_answered_and_what_it_does_not_cover_is_refused(handbook: Assistant) -> None:
    answered = handbook.ask("How many days of annual leave do I get?")
    refused = [
        handbook.ask(q)
        for q in (
            "What is the capital of France?",
            "What is LoRA?",
            "How do I bake bread?",
            "Is it going to rain today?",
        )
    ]

    assert answered.answerable and answered.citations
    for answer in refused:
        assert not answer.answerable and answer.citations == ()
        assert "Leave and Time Off" in answer.text  # says what this corpus covers
        assert not PRODUCT_WORDS.search(answer.text)


def test_a_question_with_typos_is_searched_as_the_corpus_spells_its_words(handbook: Assistant) -> None:
    typed, spelt = "how do i clame travel expences", "how do i claim travel expense"

    assert handbook.retriever.profile.spelt(typed) == spelt  # "expense": the corpus's word for it
    assert [p.id for p in handbook.retrieve(typed, k=3)] == [p.id for p in handbook.retrieve(spelt, k=3)]
    assert handbook.ask(typed).answerable


def test_a_word_the_corpus_writes_only_with_hyphens_is_read_as_it_writes_it(handbook: Assistant) -> None:
    profile = handbook.retriever.profile
    typed = "What if I start partway through the year? Is there a perdiem?"

    assert profile.spelt(typed) == "What if I start part-way through the year? Is there a per-diem?"
    assert profile.coverage(typed) == 1.0  # its parts are the handbook's words
    assert profile.coverage("What if I start partway through the year?") == profile.coverage(
        "What if I start part-way through the year?"
    )
    assert profile.hyphenated("partway") == "part-way"
    assert profile.hyphenated("wifi") == "wi-fi"  # short words too: "Never use public Wi-Fi"
    assert profile.hyphenated("part") is None  # a word the handbook uses as it is
    assert profile.hyphenated("sourdough") is None  # a word the handbook lacks, hyphenated or not
    assert [p.id for p in handbook.retrieve(typed, k=3)] == [p.id for p in handbook.retrieve(profile.spelt(typed), k=3)]


def test_hard_wrapped_lines_are_quoted_as_whole_sentences(handbook: Assistant) -> None:
    answer = handbook.ask("How does annual leave build up?")
    cited_files = {p.source for p in answer.citations}

    assert "leave-and-time-off.md" in cited_files
    assert not re.search(r"\[\d+\] [a-z]", answer.text)  # no marker in the middle of a sentence
    for line in answer.text.splitlines():
        if line and not line.startswith("- "):
            assert re.search(r"[.!?:…”\")] \[\d+\]$", line) or re.search(r"[.!?:…”\")] \[\d+\] ", line), line


def test_a_line_break_inside_a_paragraph_is_a_space() -> None:
    text = "Leave builds up month by\nmonth rather than all at once. It is\npaid.\n\n- an item\n  wrapped\n- next"
    assert [" ".join(text[a:b].split()) for a, b in sentence_spans(text)] == [
        "Leave builds up month by month rather than all at once.",
        "It is paid.",
        "- an item wrapped",
        "- next",
    ]


def test_a_blockquotes_hard_wrapped_lines_are_one_paragraph() -> None:
    text = (
        "Mounting is slower.\n\n"
        "> **Note:** `mount` is mostly useful if you want to restore just a few\n"
        "> files. To restore many files, `restore` is the best\n"
        "> alternative.\n>\n> A second paragraph of the note.\n> - a quoted item\n"
        "Not quoted."
    )
    spans = [text[a:b] for a, b in sentence_spans(text)]

    assert [" ".join(unquoted(s).split()) for s in spans] == [
        "Mounting is slower.",
        "**Note:** `mount` is mostly useful if you want to restore just a few files.",
        "To restore many files, `restore` is the best alternative.",
        "A second paragraph of the note.",
        "- a quoted item",
        "Not quoted.",
    ]
    assert spans[2] == "To restore many files, `restore` is the best\n> alternative."  # exact offsets
    assert sentence_texts(text, "Restore")[1:3] == [
        "Restore: **Note:** `mount` is mostly useful if you want to restore just a few files.",
        "Restore: To restore many files, `restore` is the best alternative.",
    ]


def test_a_quoted_note_is_quoted_as_its_reader_sees_it(embedder: Embedder) -> None:
    note = (
        "> **Note:** `mount` is mostly useful if you want to restore just a few\n"
        "> files out of a snapshot. To restore many files or a whole snapshot,\n"
        "> `restore` is the best alternative, often it is *significantly* faster."
    )
    passage = whole(note, "restore.md", "Restoring", "Restore using mount")

    answer, cited = compose(embedder, "Mount or restore, which should I use?", [passage])

    assert "`mount` is mostly useful if you want to restore just a few files out of a snapshot." in answer
    assert "`restore` is the best alternative" in answer
    assert ">" not in answer and cited == [passage]


def test_a_nested_list_is_quoted_as_a_nested_list(embedder: Embedder) -> None:
    text = (
        "You can report harassment through:\n\n"
        "- your line manager;\n"
        "- HR:\n"
        "  - by email to hr@example.org;\n"
        "  - in person with any HR business partner;\n"
        "- the SpeakUp line, which accepts anonymous reports."
    )
    passage = whole(text, "conduct.md", "Conduct", "Harassment")

    answer, _ = compose(embedder, "How can I report harassment?", [passage])

    assert answer == (
        "You can report harassment through:\n"
        "- your line manager;\n"
        "- HR:\n"
        "  - by email to hr@example.org;\n"
        "  - in person with any HR business partner;\n"
        "- the SpeakUp line, which accepts anonymous reports. [1]"
    )


def test_answers_open_with_a_sentence_and_keep_lists(bot: Assistant) -> None:
    for question in ("what are the key differences?", "What infrastructure does fine-tuning need?", "What is LoRA?"):
        answer = bot.ask(question)
        first = answer.text.split("\n")[0]
        # never a fragment (a numbered item's marker comes after the list's last item)
        assert re.search(r"[.!?:…’”\")] \[\d+\]", first) or re.search(r"^\d+\. .*[.!?:]$|:$", first), first
    resources = bot.ask("What infrastructure does fine-tuning need?").text
    assert "\n- High-performance computing infrastructure" in resources  # the list stays a list


def test_a_question_about_both_sides_gets_both(bot: Assistant) -> None:
    answer = bot.ask("How long does prompt engineering take compared to fine-tuning?")

    assert "hours or days" in answer.text and "weeks or months" in answer.text


def test_x_instead_of_y_is_answered_for_each_side_by_the_subjects_the_titles_name(bot: Assistant) -> None:
    from assistant.compose import _sides, _Stems

    stems = _Stems(bot.retriever.profile)
    # "use" is a word of the FAQ's headings, not of any title: it names neither side
    assert _sides("When should I use fine-tuning instead of prompt engineering?", stems) == [
        set(stems.terms("fine-tuning")),
        set(stems.terms("prompt engineering")),
    ]
    answer = bot.ask("When should I use fine-tuning instead of prompt engineering?")
    assert "Fine-tuning is beneficial when you want to adapt an existing language model" in answer.text


def test_a_dangling_pronoun_brings_its_antecedent(bot: Assistant) -> None:
    answer = bot.ask("Does LoRA reduce computational demands?")
    sentences = [s for s, _ in re.findall(r"([^\]\n]+?) \[(\d+)\]", answer.text)]

    for i, sentence in enumerate(sentences):
        if re.match(r"\s*(?:This|It|These|They)\b", sentence):
            assert i > 0, answer.text  # never the opening sentence


def test_a_heading_line_is_never_quoted_beside_a_sentence(embedder: Embedder) -> None:
    text = "ACME LTD. - REMOTE WORK POLICY\n\nThis policy sets out who may work from home and on which days."
    passage = whole(text, "remote.txt", "Remote work")
    question = "Who may work from home?"

    answer, cited = compose(embedder, question, [passage])

    assert answer.startswith("This policy sets out") and "REMOTE WORK POLICY" not in answer
    assert cited == [passage]


def test_a_list_of_bare_links_is_no_answer(embedder: Embedder) -> None:
    sign_in = "Call `login()` to send the user to the identity provider and back."
    links = "- [login](https://example.org/api/login)\n- [logout](https://example.org/api/logout)"
    passages = [
        Passage("refs", links, "auth.md", "Sign-in", "References", 0, len(links), 1.0, 0.7),
        Passage("how", sign_in, "auth.md", "Sign-in", "Gate the app", 500, 500 + len(sign_in), 0.9, 0.5),
    ]
    question = "How do I log a user in and out?"

    answer, cited = compose(embedder, question, passages)

    assert answer.startswith("Call `login()`") and "example.org" not in answer
    assert cited == [passages[1]]


def test_code_is_quoted_whole_after_the_sentence_that_introduces_it(embedder: Embedder) -> None:
    code = "```console\n$ mkdir /mnt/backup\n\n$ backup-tool mount /mnt/backup\nNow serving. Press Ctrl-c to stop.\n```"
    text = f"To browse a backup as a folder, mount it with this command:\n\n{code}\n\n```\n$ backup-tool ls\n```"
    passage = whole(text, "mount.md", "Mounting")
    question = "How do I browse a backup as a folder?"

    answer, _ = compose(embedder, question, [passage])

    assert answer.startswith("To browse a backup as a folder, mount it with this command: [1]")
    assert f"\n\n{code}" in answer  # verbatim, line breaks and all, as a fenced block
    assert "backup-tool ls" not in answer  # code nothing introduces is never quoted on its own


def test_a_comment_between_a_lead_in_and_its_code_is_never_quoted_and_parts_them_not(embedder: Embedder) -> None:
    code = "```js\nconst dns = require('node:dns');\n```"
    text = f"The module can be accessed using:\n\n<!-- eslint-disable strict -->\n\n{code}"
    passage = whole(text, "dns.md", "DNS")

    answer, _ = compose(embedder, "How do I access the DNS module?", [passage])

    assert answer == f"The module can be accessed using: [1]\n\n{code}"


def test_a_reference_link_is_quoted_as_its_text(embedder: Embedder) -> None:
    text = "Use [`dns.lookup()`][] to resolve a host name as the operating system does ([RFC 5952][])."
    passage = whole(text, "dns.md", "DNS")

    answer, _ = compose(embedder, "How do I resolve a host name?", [passage])

    # Its definition, at the end of the file, is never quoted: "[RFC 5952][]" would show as typed.
    assert answer == "Use `dns.lookup()` to resolve a host name as the operating system does (RFC 5952). [1]"


def test_a_myst_role_is_quoted_as_its_text(embedder: Embedder) -> None:
    text = "The {ref}`pip cache` command manages the cache; see {doc}`the caching guide <../topics/caching>`."
    passage = whole(text, "caching.md", "Caching")

    answer, _ = compose(embedder, "How do I manage the cache?", [passage])

    assert answer == "The `pip cache` command manages the cache; see `the caching guide`. [1]"


def test_a_definition_lists_item_is_quoted_as_its_term_and_definition(embedder: Embedder) -> None:
    text = "Global\n: Set in the user's config file, it applies to every project.\n"
    passage = whole(text, "scopes.md", "Scopes")

    answer, _ = compose(embedder, "What does a global setting apply to?", [passage])

    assert answer == "Global: Set in the user's config file, it applies to every project. [1]"  # not "Global : Set"


def test_a_list_item_of_several_sentences_is_quoted_whole_and_the_list_ends_its_paragraph(embedder: Embedder) -> None:
    text = (
        "Schedules a one-time callback.\n\n"
        "* `callback` {Function} The function to call when the timer elapses.\n"
        "* `delay` {number} The number of milliseconds to wait before calling the\n"
        "  `callback`. **Default:** `1`.\n"
        "* `...args` {any} Optional arguments to pass when the `callback` is called.\n\n"
        "When `delay` is larger than `2147483647`, the `delay` will be set to `1`."
    )
    passage = whole(text, "timers.md", "Timers", "setTimeout")

    answer, _ = compose(embedder, "How long does setTimeout wait by default?", [passage])

    # One list, as the source wrote it; the item's second sentence was a paragraph between two lists.
    assert (
        "- `delay` {number} The number of milliseconds to wait before calling the `callback`. **Default:** `1`.\n"
        "- `...args` {any}"
    ) in answer
    # The paragraph after the list is one of its own: on the last item's line it would read as its part.
    assert "is called. [1]\n\nWhen `delay` is larger" in answer


def test_indented_code_is_quoted_fenced_after_the_sentence_that_introduces_it(embedder: Embedder) -> None:
    text = (
        "Backups can break. Thus, the first step to repair one is to repair the index:\n\n"
        "    $ backup-tool repair index\n\n    loading indexes...\n      done\n\nThen check it again."
    )
    passage = whole(text, "troubleshooting.txt", "Troubleshooting")

    answer, _ = compose(embedder, "How do I repair the index?", [passage])

    fenced = "```\n$ backup-tool repair index\n\nloading indexes...\n  done\n```"
    assert "the first step to repair one is to repair the index: [1]\n\n" + fenced in answer


def test_indented_code_of_tabs_and_spaces_loses_its_indent_in_the_quote(embedder: Embedder) -> None:
    text = "Run a subset of tests:\n\n\t$ cd tests\n\t$ ./run.sh blkid\n\n        for example:\n\n\t\t$ ./run.sh\tcal"
    passage = whole(text, "howto-tests.txt", "Tests")

    answer, _ = compose(embedder, "How do I run a subset of tests?", [passage])

    fenced = (
        "```\n$ cd tests\n$ ./run.sh blkid\n\n    for example:\n\n    $ ./run.sh\tcal\n```"  # a tab in a line stays
    )
    assert answer == "Run a subset of tests: [1]\n\n" + fenced


def test_code_that_opens_its_section_is_quoted_under_its_heading_where_it_answers(embedder: Embedder) -> None:
    code = '```python\nif "messages" not in st.session_state:\n    st.session_state.messages = []\n```'
    opening = Passage("a", code, "chat.md", "Chat", "Basic chat structure", 0, len(code), 1.0, 0.6, opens_section=True)
    question = "What is the basic structure of a chat app?"

    answer, cited = compose(embedder, question, [opening])

    assert answer == f"Basic chat structure: [1]\n\n{code}"  # the heading, the one line that introduces it
    assert cited == [opening]
    # Code a chunk boundary cut from what introduced it has no heading over it: it is never quoted.
    cut_off = Passage("a", code, "chat.md", "Chat", "Basic chat structure", 90, 90 + len(code), 1.0, 0.6)
    assert compose(embedder, question, [cut_off]) == ("", [])


def test_a_sections_opening_code_never_pads_out_an_answer_that_another_passage_gives(embedder: Embedder) -> None:
    prose = "Avatars come by default. You can use icons or images for the user and the assistant."
    code = '```python\nfor msg in st.session_state.messages:\n    with st.chat_message(msg["role"]):\n        st.write(msg["content"])\n```'
    answer_first = Passage("a", prose, "chat.md", "Chat", "Avatars", 0, len(prose), 1.0, 0.6)
    other = Passage("b", "Deploy the app from its repository.", "deploy.md", "Deploy", "", 0, 35, 0.5, 0.1)
    example = Passage("e", code, "chat.md", "Chat", "Chat messages", 500, 500 + len(code), 0.4, 0.5, opens_section=True)

    # The third passage is quoted from, but not for its best unit's sake (`cover_passages`): its
    # code would be the third unit the answer wants (`min_units`), were it not an example.
    answer, cited = compose(embedder, "Can I use images as avatars in chat messages?", [answer_first, other, example])

    assert answer.startswith("Avatars come by default.") and "st.chat_message" not in answer
    assert example not in cited


def test_a_lead_in_in_bold_introduces_its_code_and_one_cut_off_from_it_is_no_answer(embedder: Embedder) -> None:
    code = '```python\nst.navigation(pages, position="top")\n```'
    text = f"**Few pages → Top navigation:**\n\n{code}\n\nA clean menu across the top.\n\n**Many pages → Sidebar:**"
    passage = whole(text, "pages.md", "Pages", "Navigation")
    question = "Where should the navigation go when there are few pages?"

    answer, _ = compose(embedder, question, [passage])

    assert answer.startswith("**Few pages → Top navigation:** [1]")  # a sentence, though it ends in "**"
    assert f"\n\n{code}" in answer
    assert "Sidebar" not in answer  # its code lies past the passage's end: it would introduce nothing


def test_a_sentence_leaning_on_the_one_before_brings_the_chain_or_is_left_out() -> None:
    from assistant.compose import _units, _with_antecedents

    first = "Disks can fail without warning. These failures corrupt the stored blobs. Otherwise, backups stay intact."
    second = "However, you should then run the check command again. Checks read every pack file."
    units = _units(0, Passage("a", first, "r.md", "Repair", "", 0, len(first), 1.0, 0.6))
    units += _units(1, Passage("b", second, "r.md", "Repair", "", 500, 500 + len(second), 0.9, 0.5))
    texts = [u.text for u in units]
    otherwise, however = texts.index("Otherwise, backups stay intact."), texts.index(second.split(" Checks")[0])

    kept = _with_antecedents(units, [otherwise, however], best=otherwise)

    assert [texts[i] for i in sorted(kept)] == [  # the whole chain, in document order
        "Disks can fail without warning.",
        "These failures corrupt the stored blobs.",
        "Otherwise, backups stay intact.",
    ]
    assert however not in kept  # what it follows is cut off before its passage starts
    assert _with_antecedents(units, [however], best=however) == [however]  # unless it is the best there is


@pytest.mark.parametrize(
    ("sentence", "leans"),
    [
        ("In fact, they can be combined.", True),  # a pronoun after a short opening phrase
        ("Briefly, this means the tool prints lines.", True),
        ("In general, that means nobody may copy it.", True),
        ("Sometimes, it takes a while.", False),  # "it" after a phrase is as often no pointer back
        ("In certain instances, such as very large repositories, it is useful.", False),  # "such as"
        ("For example, the tool prints lines.", False),
        ("In fact they can be combined.", False),  # no comma: no opening phrase to read past
    ],
)
def test_a_pronoun_after_an_opening_phrase_leans_on_the_sentence_before(sentence: str, leans: bool) -> None:
    from assistant.compose import _units

    text = f"Disks can fail without warning. {sentence}"
    units = _units(0, Passage("a", text, "r.md", "Repair", "", 0, len(text), 1.0, 0.6))

    assert [u.text for u in units] == ["Disks can fail without warning.", sentence]
    assert units[1].is_dangling is leans


def test_a_line_ending_in_a_bracket_is_a_label_not_a_sentence() -> None:
    from assistant.compose import _units

    text = "4. Run all backups (optional)\n\nRun them again (see the notes above.) Then check."
    fragments = {u.text: u.is_fragment for u in _units(0, Passage("a", text, "t.txt", "T", "", 0, len(text), 1.0, 0.5))}

    assert fragments == {
        "Run all backups (optional)": True,
        "Run them again (see the notes above.)": False,
        "Then check.": False,
    }


def test_a_numbered_list_stays_numbered() -> None:
    from assistant.compose import _render, _units

    text = "The differences:\n\n1. Approach: one shapes input. It is quick.\n2. Control: one adapts.\n3. Cost: one is cheap."
    passages = [Passage("a", text, "d.md", "Differences", "", 0, len(text), 1.0, 0.5)]
    units = _units(0, passages[0])
    items = [i for i, u in enumerate(units) if u.number]

    answer, _ = _render(units, items[1:], [1.0] * len(units), passages, rank_weight=RANK_WEIGHT)

    assert answer == "2. Control: one adapts.\n3. Cost: one is cheap. [1]"  # one marker for the list
    answer, _ = _render(units, list(range(len(units))), [1.0] * len(units), passages, rank_weight=RANK_WEIGHT)
    assert answer == (  # the lead-in is cited with its list
        "The differences:\n\n1. Approach: one shapes input. It is quick.\n"
        "2. Control: one adapts.\n3. Cost: one is cheap. [1]"
    )
    answer, _ = _render(units, [items[0], items[2]], [1.0] * len(units), passages, rank_weight=RANK_WEIGHT)
    assert answer == "1. Approach: one shapes input. [1]\n3. Cost: one is cheap. [1]"  # a gap: each cited


def test_a_question_near_the_corpus_is_told_where_to_look_not_that_nothing_is_there(bot: Assistant) -> None:
    answer = bot.ask("Do I need GPUs to fine-tune?")  # above the background level, below the bar

    assert not answer.answerable and len(answer.citations) == 1  # the closest passage, quoted
    assert answer.text.startswith("I'm not sure the documents")
    assert "The closest they come is in “" in answer.text
    opening, quote = answer.text.split("\n\n")[:2]
    assert quote.endswith("[1]") and quote.split(" [1]")[0][:40] in answer.citations[0].text


def test_a_question_far_from_the_corpus_quotes_nothing(bot: Assistant) -> None:
    answer = bot.ask("What is the capital of France?")

    assert not answer.answerable and answer.citations == ()
    assert answer.text.startswith("I can't answer that from the documents")


def test_a_refusal_says_not_covered_only_below_the_floor_of_the_background(bot: Assistant) -> None:
    background = bot.answers.background()
    assert background.floor < background.level
    # Between the floor and the level: nearer the corpus than most everyday questions, yet refused.
    # ("hybrid benefits" was such a question until its best sentence was weighed too: answered now.)
    best = max(p.similarity for p in bot.retrieve("How do I decide which route to take?", k=5))
    assert background.floor <= best < background.level
    answer = bot.ask("How do I decide which route to take?")
    assert not answer.answerable and answer.text.startswith("I'm not sure") and len(answer.citations) == 1

    for question in ("What is the capital of France?", "hybrid benefits", "How do I decide which route to take?"):
        answer = bot.ask(question)
        nearest = max(p.similarity for p in bot.retrieve(answer.query, k=5))
        if not answer.answerable:
            assert (answer.citations == ()) == (nearest < background.floor), question


def test_a_background_measured_before_floors_is_measured_again(bot: Assistant) -> None:
    cache = bot.settings.index_dir / "background.json"
    measured = bot.answers.background()
    cache.write_text(json.dumps({"collection": measured.collection, "level": 0.5}), encoding="utf-8")

    again = Background.measure(bot.retriever, bot.embedder, cache)

    assert again == measured
    assert json.loads(cache.read_text(encoding="utf-8"))["floor"] == measured.floor


def test_a_background_measured_before_sentence_levels_is_measured_again(bot: Assistant) -> None:
    cache = bot.settings.index_dir / "background.json"
    measured = bot.answers.background()
    old = {
        "collection": measured.collection,
        "level": 0.5,
        "floor": 0.4,
        "floor_percentile": Background.FLOOR_PERCENTILE,
    }
    cache.write_text(json.dumps(old), encoding="utf-8")

    again = Background.measure(bot.retriever, bot.embedder, cache)

    assert again == measured and measured.sentence_level > measured.level  # sentences come closer
    assert json.loads(cache.read_text(encoding="utf-8"))["sentence_level"] == measured.sentence_level


def test_one_sentence_near_the_question_answers_it_where_its_passage_is_not_near() -> None:
    profile = CorpusProfile.from_passages([{"title": "Kettle"}], {"fill": 1, "kettl": 1})
    background = Background(level=0.20, collection="c", floor=0.15, sentence_level=0.30)
    policy = RefusalPolicy()
    bar = background.sentence_level + policy.full_coverage_margin + policy.sentence_margin

    def passage(similarity: float, sentence: float) -> Passage:
        return Passage("id", "text", "kettle.md", "Kettle", "", 0, 4, 1.0, similarity, sentence_similarity=sentence)

    assert not policy.answerable("can the kettle fill", [passage(0.19, bar - 0.01)], profile, background)
    assert policy.answerable("can the kettle fill", [passage(0.19, bar + 0.01)], profile, background)
    assert policy.answerable("can the kettle fill", [passage(0.22, 0.0)], profile, background)  # the passage alone


def test_a_question_one_sentence_of_a_longer_passage_answers_is_answered(tmp_path: Path, embedder: Embedder) -> None:
    # A kettle's manual (tests/fixtures/kettle): Markdown with tables, and a hard-wrapped .txt.
    bot = Assistant.open(Settings(corpus_dir=KETTLE, index_dir=tmp_path / "index"), embedder=embedder)
    background = bot.answers.background()
    found = bot.retrieve("can it fill itself", k=5)
    assert max(p.similarity for p in found) < background.level + RefusalPolicy().full_coverage_margin  # the premise

    answer = bot.ask("can it fill itself")

    assert answer.answerable and "since it cannot fill itself. [1]" in answer.text
    assert not bot.ask("what's the weather tomorrow").answerable


def test_a_numbered_item_is_quoted_from_its_lists_first_item() -> None:
    from assistant.compose import _from_first_item, _render, _units

    text = (
        "The differences. See below.\n\n1. Approach: one shapes input. It is quick.\n"
        "2. Control: one adapts.\n3. Cost: one is cheap.\n\nA closing line."
    )
    passages = [Passage("a", text, "d.md", "Differences", "", 0, len(text), 1.0, 0.5)]
    units = _units(0, passages[0])
    third = next(i for i, u in enumerate(units) if u.number == "3.")

    answer, _ = _render(
        units, _from_first_item(units, [third], passages), [1.0] * len(units), passages, rank_weight=RANK_WEIGHT
    )

    assert answer == (
        "1. Approach: one shapes input. It is quick.\n2. Control: one adapts.\n3. Cost: one is cheap. [1]"
    )
    first = next(i for i, u in enumerate(units) if u.number == "1.")
    assert _from_first_item(units, [first], passages) == [first]  # nothing before item 1, not the intro


def test_a_numbered_list_or_table_is_quoted_with_the_line_that_introduces_it() -> None:
    from assistant.compose import _from_first_item, _render, _units

    text = (
        "Pruning runs in steps. This is how it works:\n\n1. Snapshots are scanned.\n2. Unused files are"
        " marked.\n\nLimits apply per gift, at retail value:\n\n| Value | What to do |\n|---|---|\n"
        "| Up to £25 | Accept. |\n| Over £100 | Decline. |"
    )
    passages = [Passage("a", text, "d.md", "Steps", "", 0, len(text), 1.0, 0.5)]
    units = _units(0, passages[0])
    second = next(i for i, u in enumerate(units) if u.number == "2.")
    last_row = max(i for i, u in enumerate(units) if u.table is not None)

    answer, _ = _render(
        units,
        _from_first_item(units, [second, last_row], passages),
        [1.0] * len(units),
        passages,
        rank_weight=RANK_WEIGHT,
    )

    assert answer == (
        "This is how it works:\n\n1. Snapshots are scanned.\n2. Unused files are marked. [1]\n\n"
        "Limits apply per gift, at retail value:\n\n| Value | What to do |\n|---|---|\n| Over £100 | Decline. [1] |"
    )
    text = "**Mixed: some pages ungrouped:**\n\nUse an empty key for pages outside any section. They come first."
    passages = [Passage("b", text, "d.md", "Sections", "", 0, len(text), 1.0, 0.5)]
    units = _units(0, passages[0])
    use = next(i for i, u in enumerate(units) if u.text.startswith("Use"))
    answer, _ = _render(
        units, _from_first_item(units, [use], passages), [1.0] * len(units), passages, rank_weight=RANK_WEIGHT
    )
    assert answer == "**Mixed: some pages ungrouped:** Use an empty key for pages outside any section. [1]"


CODE_DOCS = {
    "state.md": """# Session state

Streamlit keeps values across reruns in `st.session_state`, a dictionary-like object.
Set a default once with `st.session_state.setdefault("count", 0)` and read it anywhere.
Call `st.rerun()` to run the script again at once after you change a value.
A widget's key, such as `key="name_input"`, stores its value under that key.
""",
    "cli.md": """# Running the app

Start the app with `streamlit run app.py`. Pick another port with `--server.port 8502`,
and keep the browser closed with `--server.headless true`.
""",
}


@pytest.fixture(scope="module")
def code_docs(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Assistant]:
    corpus = tmp_path_factory.mktemp("code-docs")
    for name, text in CODE_DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    yield Assistant.open(
        Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("code-index")), embedder=embedder
    )


def test_names_in_code_the_corpus_never_writes_are_found_by_kind() -> None:
    texts = ["Use st.session_state, st.rerun() and forget --keep-daily 7 with cache_ttl set. See e.g. the FAQ."]
    profile = CorpusProfile.from_passages([{"title": "Docs"}], {}, texts=lambda: texts)

    assert profile.unknown_names("How do I use st.cache_data?") == ("st.cache_data",)
    assert profile.unknown_names("And St.Connection or st.cache_data?") == ("St.Connection", "st.cache_data")
    assert profile.unknown_names("what is in st.session_state and session_state") == ()  # a part of a name it writes
    assert profile.unknown_names("does --keep-weekly work like --keep-daily") == ("--keep-weekly",)
    assert profile.unknown_names("what does max_retries do") == ("max_retries",)
    assert profile.unknown_names("is keep_daily like cache-ttl") == ()  # the same words, joined otherwise
    # Not names of a kind this corpus writes: no "ok." names, "e.g." is no name, no words at all.
    assert profile.unknown_names("ok.so how do I rerun, e.g. after a click?") == ()
    assert profile.unknown_names("What is a rerun?") == ()


def test_a_long_name_with_one_typo_is_the_corpus_name() -> None:
    texts = ["Link it with target_link_libraries() and keep it in st.session_state, or set cmake_c_compiler."]
    profile = CorpusProfile.from_passages([{"title": "Docs"}], {}, texts=lambda: texts)

    for typo in ("target_link_libaries", "target_link_librarys", "tagret_link_libraries", "st.sesion_state"):
        assert profile.unknown_names(f"what does {typo} do") == (), typo
    # Two typos, or one in a short name, and it is another name.
    assert profile.unknown_names("what does cmake_cxx_compiler do") == ("cmake_cxx_compiler",)
    assert profile.unknown_names("and target_lnk_libaries?") == ("target_lnk_libaries",)
    assert profile.unknown_names("and st.session?") == ("st.session",)


def test_a_question_naming_nothing_in_code_leaves_the_corpus_unread() -> None:
    reads: list[int] = []

    def texts() -> list[str]:
        reads.append(1)
        return ["Use st.session_state."]

    profile = CorpusProfile.from_passages([{"title": "Docs"}], {}, texts=texts)

    assert profile.unknown_names("Is fine-tuning worth it? e.g. for a bot") == ()
    assert reads == []  # a hyphenated word or "e.g." is no name
    assert profile.unknown_names("and st.cache_data?") == ("st.cache_data",)
    assert profile.unknown_names("or st.rerun?") == ("st.rerun",) and reads == [1]  # read once


def _profile_of(texts: list[str], reads: list[int] | None = None) -> CorpusProfile:
    """The profile of a corpus of ``texts``, one passage each; ``reads`` counts passes over them."""
    stems = CorpusProfile((), (), (), {})
    doc_freq: dict[str, int] = {}
    for text in texts:
        for term in set(stems.terms(text)):
            doc_freq[term] = doc_freq.get(term, 0) + 1

    def read() -> list[str]:
        if reads is not None:
            reads.append(1)
        return texts

    return CorpusProfile.from_passages([{"title": "Handbook"}] * len(texts), doc_freq, texts=read)


def test_an_acronym_the_corpus_only_spells_out_is_read_as_its_words() -> None:
    reads: list[int] = []
    profile = _profile_of(
        [
            "Staff accrue paid time off from their first day.",
            "Unused paid time off carries over to the next year.",
            "Our Service Level Agreement is on the wiki. Use SSO to sign in.",
            "The team plan and the travel policy, the team plan and the travel policy.",
            "Ask Human Resources. Reruns go via st.rerun, or via st.stop, or via st.switch_page.",
        ],
        reads,
    )

    assert profile.expanded("How much PTO do I get?") == "How much paid time off do I get?"
    assert profile.coverage("How much PTO do I get?") == 1.0  # was 0: "pto" is no word of the corpus
    assert profile.coverage("How much XQZ do I get?") == 0.0
    # The embedding and the keywords get the acronym and the phrase, unless the model knows the acronym.
    assert profile.spelt("How much PTO do I get?") == "How much PTO (paid time off) do I get?"
    assert profile.spelt("How much PTO do I get?", reads_whole=lambda word: True) == "How much PTO do I get?"
    assert profile.expanded("what's our SLA") == "what's our service level agreement"  # a name, written once
    assert profile.expanded("email HR") == "email human resources"  # two words: only a name
    assert profile.expanded("rebase VS merge?") == "rebase VS merge?"  # not "via st"
    # One pass each for PTO, XQZ, SLA, HR and VS, and one for the words written with hyphens ("xqz").
    assert profile.expansion("pto") == "paid time off" and len(reads) == 6

    assert profile.expanded("is SSO on?") == "is SSO on?"  # the corpus writes it
    assert profile.expanded("what is the TP?") == "what is the TP?"  # "team plan" or "travel policy": no telling
    assert profile.expanded("is it GOOD or NOT?") == "is it GOOD or NOT?"  # words typed in capitals
    assert profile.expanded("HOW MUCH PTO DO I GET") == "HOW MUCH PTO DO I GET"  # all in capitals: no acronym told


def test_a_question_with_an_acronym_of_words_in_a_table_is_answered_from_the_table(
    tmp_path: Path, embedder: Embedder
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = "\n".join(
        f"| {country} | {years} | {days} |"
        for country, base in (("Germany", 28), ("France", 30), ("Spain", 23), ("Italy", 26))
        for years, days in (("0-2", base), ("3-5", base + 2), ("6+", base + 4))
    )
    (corpus / "leave.md").write_text(
        "# Leave policy\n\n## Annual leave\n\nEmployees accrue paid time off from their first day. The table "
        "below lists the yearly allowance by country and years of service.\n\n"
        f"| Country | Years of service | Days of paid time off per year |\n|---|---|---|\n{rows}\n\n"
        "## Parental leave\n\nBirth parents get 26 weeks of paid leave.\n",
        encoding="utf-8",
    )
    (corpus / "expenses.md").write_text(
        "# Expenses\n\n## Meals\n\nMeals while travelling are reimbursed up to 45 euros a day.\n", encoding="utf-8"
    )
    (corpus / "it.txt").write_text(
        "IT security\n\nLock your laptop whenever you leave your desk. Report a lost device\nwithin one hour.\n",
        encoding="utf-8",
    )
    bot = Assistant.open(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder=embedder)

    answer = bot.ask("How much PTO do I get?")

    assert answer.answerable  # refused before: "PTO" counted as a word the corpus lacks
    assert answer.citations[0].source == "leave.md"
    assert "paid time off" in answer.text
    assert not bot.ask("How much XQZ do I get?").answerable


def test_a_corpus_without_names_in_code_judges_none() -> None:
    profile = CorpusProfile.from_passages([{"title": "Leave"}], {}, texts=lambda: ["Staff get 25 days of leave."])

    assert profile.unknown_names("can I run llama.cpp with --n-gpu-layers and max_tokens?") == ()


def test_a_question_naming_what_the_corpus_never_writes_is_refused_and_told_why(code_docs: Assistant) -> None:
    known = code_docs.ask("How do I keep a value across reruns with st.session_state?")
    unknown = code_docs.ask("How do I keep a value across reruns with st.cache_data?")
    flag = code_docs.ask("How do I pick the port with --server.address?")

    assert known.answerable and "st.session_state" in known.text
    assert not unknown.answerable and "They never mention `st.cache_data`." in unknown.text
    assert not flag.answerable and "never mention `--server.address`" in flag.text
    assert code_docs.ask("How do I change the port with --server.port?").answerable


def test_the_second_passage_is_quoted_when_its_best_sentence_is_near_the_best(embedder: Embedder) -> None:
    leave = (
        "Full-time employees get 25 days of annual leave a year. Leave is booked in the HR portal. "
        "The leave year runs from January to December. Unused days lapse at the end of March."
    )
    part_time = "Part-time employees get a pro rata share of the annual leave allowance."
    canteen = "The office canteen serves hot lunches from noon until two."
    first = Passage("leave", leave, "handbook.md", "Handbook", "Annual leave", 0, len(leave), 1.0, 0.6)
    near = Passage(
        "part", part_time, "handbook.md", "Handbook", "Part-time work", 1000, 1000 + len(part_time), 0.9, 0.5
    )
    far = Passage("lunch", canteen, "handbook.md", "Handbook", "Canteen", 2000, 2000 + len(canteen), 0.9, 0.3)
    question = "How much annual leave do part-time staff get?"
    vector = embedder.embed_query(question)

    def cited(cover_passages: int, passages: list[Passage]) -> list[str]:
        # No margin and one unit at least: only the follow-on sentences and this rule add to the best.
        composer = ExtractiveComposer(SentenceCache(embedder), cover_passages=cover_passages, min_units=1, margin=0.0)
        _, sources = composer.compose(question, vector, passages)
        return [p.id for p in sources]

    assert cited(0, [first, near]) == ["leave"]
    assert cited(2, [first, near]) == ["leave", "part"]  # the default
    assert cited(2, [first, far]) == ["leave"]  # a canteen sentence is no answer, whatever its rank
    assert compose(embedder, question, [first, near])[0].count("Part-time employees get a pro rata share") == 1


HOME = (
    "Staff may work from home on any day agreed with their manager. Home working is recorded in "
    "the HR portal. Equipment for a home office is provided on request."
)
ABROAD = (
    "Working from another country has its own rules. Staff may work from another country for at "
    "most 20 days a year. Longer stays need the approval of HR."
)


def _staff_passage(id: str, text: str, section: str, rank: int) -> Passage:
    """A handbook passage of ``text`` under ``section``, as the retrieval returns it at ``rank``."""
    start = 1000 * rank
    return Passage(
        id, text, "handbook.md", "Handbook", section, start, start + len(text), 1.0 - rank / 10, 0.6 - rank / 10
    )


def test_the_second_passage_brings_the_detail_after_its_quoted_sentence(embedder: Embedder) -> None:
    first = _staff_passage("home", HOME, "Working from home", 0)
    second = _staff_passage("abroad", ABROAD, "Working abroad", 1)
    question = "What are the rules for working from home?"
    composer = ExtractiveComposer(SentenceCache(embedder), min_units=1, max_units=1, margin=0.0)

    answer, cited = composer.compose(question, embedder.embed_query(question), [first, second])

    assert [p.id for p in cited] == ["home", "abroad"]
    assert "Working from another country has its own rules. [2]" in answer  # the sentence the rule quotes ...
    assert "for at most 20 days a year. [2]" in answer  # ... with what it announces, though the answer was full


def test_the_answer_opens_with_the_higher_ranked_passage_when_their_sentences_score_alike(embedder: Embedder) -> None:
    ranked_first = _staff_passage("abroad", ABROAD, "Working abroad", 0)
    ranked_second = _staff_passage("home", HOME, "Working from home", 1)
    question = "What are the rules for working from home?"  # the second passage's sentences score best
    vector = embedder.embed_query(question)

    def answer(rank_weight: float) -> str:
        composer = ExtractiveComposer(SentenceCache(embedder), min_units=1, margin=0.0, rank_weight=rank_weight)
        return composer.compose(question, vector, [ranked_first, ranked_second])[0]

    by_score, by_rank = answer(0.0), answer(1.0)
    assert by_score.startswith("Staff may work from home")
    assert by_rank.startswith("Working from another country has its own rules.")
    unmarked = [sorted(re.sub(r" \[\d\]", "", a).split("\n\n")) for a in (by_score, by_rank)]
    assert unmarked[0] == unmarked[1]  # the same paragraphs, reordered (and their markers renumbered)


PLANS = (
    "Acme Cloud offers three plans, billed monthly.\n\n| Plan | Price per month | Storage |\n|---|---|---|\n"
    "| Free | $0 | 5 GB |\n| Pro | $12 | 100 GB |\n| Team | $40 | 1 TB |\n\n"
    "Every plan includes TLS encryption at no extra cost."
)


def test_a_table_row_is_quoted_under_its_header_with_the_marker_in_its_last_cell(embedder: Embedder) -> None:
    passage = whole(PLANS, "pricing.md", "Pricing", "Plans")

    answer, cited = compose(embedder, "How much storage does the Team plan include?", [passage])

    header = "| Plan | Price per month | Storage |\n|---|---|---|\n"
    assert f"{header}| Team | $40 | 1 TB [1] |\n\n" in answer  # a table, then a blank line: the table ends
    assert answer.count(header) == 1 and cited == [passage]
    table = answer.split(header)[1].split("\n\n")[0].splitlines()
    assert all(row.startswith("| ") and row.endswith(" |") for row in table)  # nothing but rows in it


def test_a_row_of_a_table_without_outer_pipes_is_quoted_under_its_header(embedder: Embedder) -> None:
    text = (  # PLANS's table written GFM's other way, without its outer pipes
        "Acme Cloud offers three plans, billed monthly.\n\nPlan | Price per month | Storage\n--- | --- | ---\n"
        "Free | $0 | 5 GB\nPro | $12 | 100 GB\nTeam | $40 | 1 TB\n\n"
        "Every plan includes TLS encryption at no extra cost."
    )
    passage = whole(text, "pricing.md", "Pricing", "Plans")

    answer, _ = compose(embedder, "How much storage does the Team plan include?", [passage])

    assert "Plan | Price per month | Storage\n--- | --- | ---\nTeam | $40 | 1 TB [1]\n\n" in answer


LEAVE = (
    "Employees accrue paid time off from their first day.\n\n| Country | Years of service | Days per year |\n|---|---|---|\n"
    + "".join(
        f"| {country} | {years} | {base + extra} |\n"
        for country, base in (("Germany", 28), ("France", 30), ("Spain", 23))
        for years, extra in (("0-2", 0), ("3-5", 2), ("6+", 4))
    )
)


def test_rows_naming_what_the_question_names_are_quoted_and_their_neighbours_are_not(embedder: Embedder) -> None:
    passage = whole(LEAVE, "leave.md", "Leave", "Annual leave")

    answer, _ = compose(embedder, "how many vacation days do I get in Germany after 4 years", [passage])

    rows = [line for line in answer.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows and all("Germany" in row for row in rows)  # rows of one table read alike to the model
    # A question that names no cell is scored by the rows' vectors alone, as before.
    assert "| " in compose(embedder, "how many days off do I get after 4 years of service", [passage])[0]


def test_a_table_row_never_pads_an_answer_it_does_not_answer(embedder: Embedder) -> None:
    passage = whole(PLANS, "pricing.md", "Pricing", "Plans")

    answer, _ = compose(embedder, "Is encryption included?", [passage])

    assert "Every plan includes TLS encryption at no extra cost. [1]" in answer
    assert "|" not in answer  # before tables were read, a row was no quote; now it is one only when it answers


def test_a_table_in_the_corpus_is_searched_and_quoted_by_its_rows(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "pricing.md").write_text(f"# Pricing\n\n## Plans\n\n{PLANS}\n", encoding="utf-8")
    (corpus / "support.txt").write_text(
        "Support\n\nOur support team answers tickets from 9am to 5pm CET,\nMonday to Friday.\n", encoding="utf-8"
    )
    bot = Assistant.open(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder=embedder)

    answer = bot.ask("how much storage do i get on the team plan")

    assert answer.answerable and answer.citations[0].source == "pricing.md"
    assert "|---|---|---|\n" in answer.text and "| Team | $40 | 1 TB" in answer.text


def test_rows_of_a_table_cut_from_its_header_are_quoted_under_it(embedder: Embedder) -> None:
    rows = "| `--no-lock` | Do not lock the repository; only safe for read-only operations |\n| `--json` | Print JSON |"
    header = "| Option | Description |\n|---|---|"
    passage = Passage("id", rows, "options.md", "Options", "", 900, 900 + len(rows), 1.0, 0.6, table_header=header)

    answer, _ = compose(embedder, "What does the no-lock option do?", [passage])

    assert answer.startswith(
        f"{header}\n| `--no-lock` | Do not lock the repository; only safe for read-only operations [1] |"
    )
    assert "--json" not in answer  # the row after a row is another row, not its detail


#: A pull-quote as Markdown written for a site generator wraps it (the Open Source Guides' articles).
PULL_QUOTE = (
    "## Taking donations\n\n"
    '<aside markdown="1" class="pquote">\n'
    '  <img src="https://example.org/avatar.png?v=3&s=400" class="pquote-avatar" alt="avatar">\n'
    "  Donations bring a feeling of responsibility to the people who gave.\n"
    '  <p markdown="1" class="pquote-credit">\n'
    "— A maintainer, [on donations](https://example.org/post)\n"
    "  </p>\n"
    "</aside>\n\n"
    "Some maintainers turn donations down because they do not want to feel obliged to donors.\n"
)


def test_lines_of_html_tags_are_neither_quoted_nor_embedded(embedder: Embedder) -> None:
    passage = whole(PULL_QUOTE, "paid.md", "Getting paid", "Taking donations")

    answer, _ = compose(embedder, "Do donations make maintainers feel responsible to donors?", [passage])

    assert "Donations bring a feeling of responsibility to the people who gave. [1]" in answer
    assert "<" not in answer and "pquote" not in answer
    embedded = sentence_texts(PULL_QUOTE, "Taking donations")
    assert "Taking donations: Donations bring a feeling of responsibility to the people who gave." in embedded
    assert not any("<" in text for text in embedded)


def test_a_question_of_nothing_but_the_corpus_own_jargon_is_answered(tmp_path: Path, embedder: Embedder) -> None:
    ninja = Assistant.open(
        Settings(corpus_dir=ROOT / "bench" / "corpora" / "ninja", index_dir=tmp_path), embedder=embedder
    )
    profile = ninja.retriever.profile

    assert profile.own_terms_only("compdb?") and profile.own_terms_only("what is dyndep")
    # An English word ("pool", "pizza"), or a word the corpus never writes, and similarity decides.
    assert not any(map(profile.own_terms_only, ["pool?", "compdb pizza", "kubectl", "what is it"]))
    # MiniLM has no vector of its own for "compdb": the best passage scores below the background.
    answer = ninja.ask("compdb?")
    assert answer.answerable and "compilation database" in answer.text
    assert answer.citations[0].section == "Using Ninja for your project > Extra tools"
