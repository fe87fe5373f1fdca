"""What the engine knows about its corpus, derived from the index rather than written in code.

`CorpusProfile` is read off an index generation when it is opened: the keyword index already
holds every passage's stemmed terms and how many passages use each, and the passages' metadata
holds the documents' titles and headings. From those the engine gets

- term statistics, to weigh a question's words by how much they say about this corpus
  (`coverage`, `weights`): a word the corpus never uses is strong evidence of an off-topic
  question, unless it is an everyday English word ("long", "take", "one"), which any question
  may use; a word every passage uses says little;
- a description of what the corpus covers (`topic`), for the refusal message and the LLM prompt;
- example questions (`examples`): the FAQ's questions when the corpus has an FAQ, else its headings.

Nothing here names a subject: a different corpus gets a different profile with no code change.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
#: A word written with hyphens between letters ("fine-tuning", "trade-off", "part-way").
_HYPHENATED = re.compile(r"(?<![\w-])[^\W\d_]+(?:-[^\W\d_]+)+(?![\w-])")
#: Names in code, which only a corpus that documents them writes: a dotted name ("st.cache_data",
#: "secrets.toml"; each part two characters or more, so "e.g." is none), a command-line flag
#: ("--keep-daily", "--server.port") and a snake_case name ("session_state"); a call's "()" is left off.
_DOTTED = re.compile(r"(?<![\w.-])[a-z_]\w+(?:\.[a-z_]\w+)+", re.IGNORECASE)
_FLAG = re.compile(r"(?<![\w-])--[a-z][\w.-]*\w", re.IGNORECASE)
_SNAKE = re.compile(r"(?<![\w.-])[a-z]\w*_\w+", re.IGNORECASE)
#: Any snake_case run, inside a dotted name or a flag too: what tells that a corpus writes such names.
_SNAKE_RUN = re.compile(r"[a-z]\w*_\w+", re.IGNORECASE)
#: An acronym as typed: two to six capitals, perhaps with a plural "s" ("PTO", "SLAs").
_ACRONYM = re.compile(r"(?<![\w.-])([A-Z]{2,6})s?(?![\w.-])")
#: "X vs Y" in a title names two subjects (English; NLTK's stopwords lack it).
_VERSUS = re.compile(r"vs|versus", re.IGNORECASE)

#: A word the corpus never uses counts against coverage only when it is rarer in English than
#: this (wordfreq's Zipf scale: 5.2 is about 1.6 times per 100,000 words, as "problems").
#: Everyday words ("long" 5.8, "take" 5.9, "one" 6.5) say nothing about what a question is about.
#: Chosen on the dev halves of the blind sets (bench/blind) with the refusal margins: product
#: in-scope refused 0.139 -> 0.078 (handbook 0.034), off-topic refused 0.927 / 0.933. 5.0 refused
#: one question fewer but let "How do I train a dog?" ("dog" 5.1) through, a regression check of
#: tests/test_answer.py; 5.3 and 5.4 gave 0.078, 5.6 and above 0.113.
EVERYDAY_ZIPF = 5.2

#: A word at least this common in English (Zipf) is a word, not a typo, and is never "mended" into
#: a corpus term: "maternity" (3.7) is not "matter", "dental" (4.1) not "deal", "completely" (5.0)
#: not "complex". Typos sit below it: in the dev halves of the blind sets "holliday" 2.9, "realy"
#: 2.8, "buisness" 2.4, "promt" 1.2, "allowence" 0.0; the rarest real word there that the corpus
#: lacks was "full-timers" (3.3).
TYPO_ZIPF = 3.0
#: A name in code this long or longer may hold one typo and still be the corpus's name
#: (`_Names.writes`). One wrong, missing or extra character in a name of ten characters scores a
#: `difflib` ratio of 0.90 to 0.95, two in one of that length at most 0.85, so `TYPO_RATIO` 0.9
#: is "one typo", not a choice tuned on a set; below ten characters one typo is a larger share of
#: the name, and two short names often differ by one character ("--keep-daily", "--keep-yearly"
#: differ by more, but "st.tabs" and "st.tab" would not).
TYPO_NAME_CHARS = 10
TYPO_RATIO = 0.9


def _stopwords() -> frozenset[str]:
    """English stopwords (NLTK's list, which LlamaIndex ships offline)."""
    from llama_index.core.utils import globals_helper

    return frozenset(globals_helper.stopwords)


def _zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en")


def _everyday(word: str) -> bool:
    """Whether ``word`` is an everyday English word (see `EVERYDAY_ZIPF`)."""
    return _zipf(word) >= EVERYDAY_ZIPF


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")  # the stemmer the keyword index (bm25s) uses


def _in_turn(documents: Iterable[Counter[str]]) -> tuple[str, ...]:
    """Headings (FAQ questions left out) taken from each document in turn, so that the first few
    (`CorpusProfile.examples`) span the corpus rather than its longest document. Within a document,
    prose comes before a heading with code in it (an API page's "`fs.access(path[, mode], callback)`"
    reads badly in "What do the documents say about …?"), and the heading over most passages first.
    """
    ranked = [  # sorted is stable: ties stay in corpus order
        sorted((h for h in counts if not h.endswith("?")), key=lambda h: ("`" in h, -counts[h])) for counts in documents
    ]
    picked: dict[str, None] = {}
    for row in itertools.zip_longest(*ranked):
        picked.update((h, None) for h in row if h is not None)
    return tuple(picked)


@dataclass(frozen=True)
class CorpusProfile:
    """Vocabulary, titles and headings of one index generation."""

    titles: tuple[str, ...]
    headings: tuple[str, ...]  # section headings, each document's in turn (see `_in_turn`)
    questions: tuple[str, ...]  # FAQ questions (headings that end in "?"), in corpus order
    doc_freq: Mapping[str, int] = field(repr=False)  # stemmed term -> passages using it
    passages: int = 0
    #: The passages' texts, read only when a typo needs the corpus's own spelling (`spelt`) or a
    #: question names something in code (`unknown_names`).
    texts: Callable[[], Iterable[str]] = field(default=tuple, repr=False, compare=False)

    @classmethod
    def from_passages(
        cls,
        metadata: Iterable[Mapping[str, object]],
        doc_freq: Mapping[str, int],
        texts: Callable[[], Iterable[str]] = tuple,
    ) -> CorpusProfile:
        """Build the profile from each passage's metadata and the keyword index's term counts.

        ``texts`` gives the passages' texts when called; it is called at most once, the first
        time a question has a typo (`spelt`) or names something in code (`unknown_names`).
        """
        titles: dict[str, None] = {}
        sections: dict[str, Counter[str]] = {}  # a document's title -> its headings -> passages
        questions: dict[str, None] = {}
        count = 0
        for meta in metadata:
            count += 1
            title = str(meta.get("title") or "").strip()
            if title:
                titles.setdefault(title)
            section = str(meta.get("section") or "").strip()
            last = section.split(" > ")[-1].strip() if section else ""
            if last:
                sections.setdefault(title, Counter())[last] += 1
                if last.endswith("?"):
                    questions.setdefault(last)
        return cls(tuple(titles), _in_turn(sections.values()), tuple(questions), dict(doc_freq), count, texts)

    # -- describing the corpus --------------------------------------------------------------

    @property
    def topic(self) -> str:
        """What the corpus is, for people: its documents' titles."""
        titles = [f"“{t}”" for t in self.titles[:4]]
        if not titles:
            return "the documents in this index"
        more = len(self.titles) - len(titles)
        listed = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]
        return f"the documents {listed}" + (f" (and {more} more)" if more > 0 else "")

    @property
    def subject_text(self) -> str:
        """The documents' titles as one text, the context of a question that names no subject."""
        return " ".join(t if t.endswith((".", "?", "!")) else t + "." for t in self.titles)

    @cached_property
    def title_terms(self) -> frozenset[str]:
        """The content words of the documents' titles: the names of what the corpus is about."""
        return frozenset(self.terms(" ".join(self.titles)))

    @cached_property
    def heading_terms(self) -> frozenset[str]:
        """The content words of the documents' titles, headings and FAQ questions."""
        return frozenset(self.terms(" ".join((*self.titles, *self.headings, *self.questions))))

    def names_subject(self, text: str) -> bool:
        """Whether every content word of ``text`` is a word of the documents' titles ("fine-tuning")."""
        terms = self.terms(text)
        return bool(terms) and all(t in self.title_terms for t in terms)

    @cached_property
    def _subject_names(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The titles' runs of content words with their terms in order, most used first ("Prompt Engineering vs Fine-Tuning" gives "Prompt Engineering" and "Fine Tuning")."""
        runs: Counter[str] = Counter()
        for title in self.titles:
            run: list[str] = []
            for word in [*_TOKEN.findall(title), ""]:
                if word and word.lower() not in self.stopwords and not word.isdigit() and not _VERSUS.fullmatch(word):
                    run.append(word)
                elif run:
                    runs[" ".join(run)] += 1
                    run = []
        return tuple((name, tuple(self.terms(name))) for name, _ in runs.most_common())

    def subject_name(self, text: str) -> str | None:
        """The name the titles give a subject that ``text`` shortens ("prompting" -> "Prompt Engineering"), else None.

        The name must open with the words of ``text``: it completes a shortened name ("remote" ->
        "Remote work"), never puts a qualifier before a whole one ("sick leave" is not "Acme Corp
        Sick Leave", which would search the company's name rather than the subject).
        """
        terms = set(self.terms(text))
        if not terms:
            return None
        if any(terms == set(named) for _, named in self._subject_names):
            return None  # already a name of its own ("fine tuning")
        return next(
            (name for name, named in self._subject_names if terms < set(named) and set(named[: len(terms)]) == terms),
            None,
        )

    def examples(self, n: int = 3) -> tuple[str, ...]:
        """Questions the corpus answers, to offer when a question is out of scope."""
        picks = list(self.questions[:n])
        for heading in self.headings:
            if len(picks) >= n:
                break
            # "Core hours" reads "core hours" mid-sentence; "API keys", "CORE HOURS" and a heading in
            # title case ("Pack Size", not "pack Size") keep their capitals.
            title_case = any(w[:1].isupper() and w[1:].isalpha() and w[1:].islower() for w in heading.split()[1:])
            name = heading[:1].lower() + heading[1:] if heading[1:2].islower() and not title_case else heading
            picks.append(f"What do the documents say about {name}?")
        return tuple(picks)

    # -- weighing words ---------------------------------------------------------------------

    @cached_property
    def stopwords(self) -> frozenset[str]:
        """The words left out of `terms` (NLTK's English stopwords)."""
        return _stopwords()

    @cached_property
    def _stem(self):
        return _stemmer()

    @cached_property
    def _by_initial(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for term in self.doc_freq:
            groups.setdefault(term[:1], []).append(term)
        return groups

    def terms(self, text: str) -> list[str]:
        """The content words of ``text``, stemmed as the keyword index stems them, stopwords dropped."""
        words = self._words(text)
        return self._stem.stemWords(words) if words else []

    def idf(self, term: str) -> float:
        """Inverse passage frequency (BM25's), highest for a term the corpus never uses."""
        df = self.doc_freq.get(term, 0)
        return math.log((self.passages - df + 0.5) / (df + 0.5) + 1.0)

    def known(self, term: str, word: str) -> str | None:
        """The corpus term ``term`` is, allowing one typo in a word of five letters or more.

        Args:
            term: A stemmed term (`terms`).
            word: The word as typed: a word of English (`TYPO_ZIPF`) is taken as spelt right
                ("really" is not a typo for "retaliate", nor "maternity" for "matter").
        """
        if term in self.doc_freq:
            return term
        if len(term) < 5 or _zipf(word) >= TYPO_ZIPF:
            return None
        close = difflib.get_close_matches(term, self._by_initial.get(term[:1], ()), n=1, cutoff=0.8)
        return close[0] if close else None

    @cached_property
    def _read(self) -> tuple[dict[str, str], dict[str, str], _Names]:
        """One pass over the passages' texts: `_spellings`, `_hyphenated` and `_names`."""
        counts: dict[str, Counter[str]] = {}
        joined: dict[str, Counter[str]] = {}
        names = _Names()
        for text in self.texts():
            lower = text.lower()
            for word in _TOKEN.findall(lower):
                counts.setdefault(self._stem.stemWord(word), Counter())[word] += 1
            for compound in _HYPHENATED.findall(lower):
                joined.setdefault(self._stem.stemWord(compound.replace("-", "")), Counter())[compound] += 1
            names.add(lower)
        spellings = {term: words.most_common(1)[0][0] for term, words in counts.items()}
        hyphenated = {term: words.most_common(1)[0][0] for term, words in joined.items() if term not in self.doc_freq}
        return spellings, hyphenated, names

    @property
    def _spellings(self) -> dict[str, str]:
        """Each stemmed term -> the word the corpus most often writes for it."""
        return self._read[0]

    @property
    def _hyphenated(self) -> dict[str, str]:
        """Each word the corpus writes only with hyphens, stemmed and joined -> how it writes it most
        ("finetun" -> "fine-tuning")."""
        return self._read[1]

    @property
    def _names(self) -> _Names:
        """The names in code the corpus writes (`unknown_names`)."""
        return self._read[2]

    def hyphenated(self, word: str) -> str | None:
        """How the corpus writes ``word`` when it writes it only with hyphens, or None: "finetuning"
        and "finetune" are "fine-tuning" to a corpus that never joins the two words. Read only for
        a word the corpus does not use (the passages' texts are read the first time)."""
        term = self._stem.stemWord(word.lower())
        if term in self.doc_freq:
            return None
        return self._hyphenated.get(term)

    def unknown_names(self, text: str) -> tuple[str, ...]:
        """The names in code in ``text`` that the corpus never writes, of a kind it does write.

        "How do I set a TTL on st.cache_data?" asks a corpus that documents other ``st.`` names
        about one it does not have: whatever its words share with the corpus, that is not
        covered. A dotted name counts only when the corpus writes other names with its first part
        ("ok.so" typed without a space is no name of this corpus's), a flag or a snake_case name
        only when the corpus writes some.
        """
        if not any(pattern.search(text) for pattern in (_DOTTED, _FLAG, _SNAKE)):
            return ()  # names nothing ("fine-tuning" is a word): the corpus's texts are not read
        return self._names.unknown(text)

    def expansion(self, acronym: str) -> str | None:
        """The phrase of the corpus's that ``acronym`` (as typed: "PTO") stands for, else None.

        A phrase qualifies when its words' initials spell the acronym ("paid time off"), it opens
        with a content word and has at most one stopword, and the corpus writes it at least twice
        (once in Title Case, as names are) and twice as often as any other such phrase. A phrase of
        two words counts only in Title Case ("Human Resources"), with no stopword: two words with
        the initials of a short acronym are common ("via st" for "VS" in Streamlit's pages). Looked
        up once per acronym, by a pass over the passages' texts: only a question that types an
        acronym the corpus never writes pays for it.
        """
        key = acronym.lower()
        if key in self._expansions:
            return self._expansions[key]
        words = r"[\s-]+".join(rf"({letter}[a-z]*)" for letter in key)
        pattern = re.compile(rf"(?<![\w-]){words}(?![\w-])", re.IGNORECASE)
        two = len(key) == 2
        counts: Counter[str] = Counter()
        for text in self.texts():
            for match in pattern.finditer(text):
                parts = match.groups()
                lower = [w.lower() for w in parts]
                if lower[0] in self.stopwords or sum(w in self.stopwords for w in lower) > (0 if two else 1):
                    continue
                named = all(w[:1].isupper() for w, low in zip(parts, lower) if low not in self.stopwords)
                if named or not two:  # two words that happen to share initials are common: a name only
                    counts[" ".join(lower)] += 2 if named else 1
        ranked = counts.most_common(2)
        best = None
        if ranked and ranked[0][1] >= 2 and (len(ranked) == 1 or ranked[0][1] >= 2 * ranked[1][1]):
            best = ranked[0][0]
        self._expansions[key] = best
        return best

    @cached_property
    def _expansions(self) -> dict[str, str | None]:
        return {}

    def expanded(self, text: str) -> str:
        """``text`` with each acronym the corpus never writes replaced by the corpus's phrase for it
        (`expansion`): "How much PTO do I get?" reads "How much paid time off do I get?" to a
        corpus that writes only the words. Text typed all in capitals is left as it is.

        Only capitals make an acronym: read in lowercase, "im" was "improve model", "vs" "via st"
        and "ad" "across different" in the blind dev questions (bench/blind).
        """
        return self._acronyms(text, lambda acronym, phrase: phrase)

    def _acronyms(self, text: str, render: Callable[[str, str], str]) -> str:
        """``text`` with ``render(acronym, phrase)`` in place of each acronym that has an `expansion`."""
        if text.isupper():
            return text

        def expand(match: re.Match[str]) -> str:
            lower = match.group(1).lower()
            if lower in self.stopwords or self._stem.stemWord(match.group().lower()) in self.doc_freq:
                return match.group()  # a word, or an acronym the corpus writes
            if _everyday(lower):
                return match.group()  # "GOOD", "NOT": a word typed in capitals for emphasis
            phrase = self.expansion(lower)
            return render(match.group(), phrase) if phrase else match.group()

        return _ACRONYM.sub(expand, text)

    def spelt(self, text: str, reads_whole: Callable[[str], bool] | None = None) -> str:
        """``text`` with each typo of a corpus word (`known`), and each word the corpus writes only
        with hyphens (`hyphenated`), written as the corpus writes that word.

        "can i report harrasment anonimously" reads "can i report harassment anonymous" (for each
        stem, the word the corpus writes most): the embedding model, unlike the keyword index,
        reads words whole, and a typo moves it.

        An acronym the corpus never writes is followed by the corpus's phrase for it (`expansion`:
        "PTO (paid time off)"), unless ``reads_whole`` says the embedding model reads it as a word
        of its own ("ML", "API"). Spelling "ML" out as "machine learning" (before a two-word phrase
        had to be a name, `expansion`) lost one question's passage on each half of the blind
        product sets and answered none better (bench/blind; on dev, "no ML engineers" then found
        the introduction's "machine learning" first, by its vector and by its keywords).
        """
        text = self._acronyms(
            text, lambda acronym, phrase: acronym if reads_whole and reads_whole(acronym) else f"{acronym} ({phrase})"
        )

        def mend(match: re.Match[str]) -> str:
            word = match.group()
            lower = word.lower()
            if lower in self.stopwords or word.isdigit():
                return word
            stem = self._stem.stemWord(lower)
            if stem in self.doc_freq:
                return word
            joined = self.hyphenated(lower)
            if joined:
                return joined
            known = self.known(stem, lower)
            return self._spellings.get(known, word) if known else word

        return _TOKEN.sub(mend, text)

    def _words(self, text: str) -> list[str]:
        return [w for w in _TOKEN.findall(text.lower()) if w not in self.stopwords and not w.isdigit()]

    def weights(self, text: str) -> dict[str, float]:
        """Each content term of ``text`` (as the corpus spells it: typos mended, acronyms it spells
        out `expanded`) with its IDF."""
        out: dict[str, float] = {}
        for word in self._content_words(text):
            term = self._stem.stemWord(word)
            known = self.known(term, word)
            out[known or term] = self.idf(known or term)
        return out

    def _content_words(self, text: str) -> list[str]:
        """The content words of ``text`` as the corpus writes them: acronyms it spells out
        `expanded`, words it writes only with hyphens (`hyphenated`) as their parts."""
        words = []
        for word in self._words(self.expanded(text)):
            joined = None if _everyday(word) else self.hyphenated(word)
            words.extend(self._words(joined) if joined else [word])
        return words

    def coverage(self, text: str) -> float:
        """The IDF-weighted share of the text's content words that the corpus uses (1.0 with none).

        A word the corpus never uses is left out when it is an everyday English word
        (`EVERYDAY_ZIPF`): "How long does each one take?" uses no word that names another subject.
        An acronym the corpus spells out, or a word it writes only with hyphens, counts as its
        words (`_content_words`).
        """
        covered = total = 0.0
        for word in dict.fromkeys(self._content_words(text)):
            term = self._stem.stemWord(word)
            if term in self.doc_freq:
                known: str | None = term
            elif _everyday(word):
                continue  # an everyday word the corpus does not use: neither for nor against
            else:
                known = self.known(term, word)  # a typo of a corpus word, or a word the corpus lacks
            weight = self.idf(known or term)
            total += weight
            covered += weight if known else 0.0
        return covered / total if total else 1.0

    def own_terms_only(self, text: str) -> bool:
        """Whether every content word of ``text`` is a term of this corpus that is no English word
        at all (wordfreq does not know it): "compdb?", "what is dyndep" name nothing a question
        about something else could, however far MiniLM, which has no vector of its own for such
        words, puts them from the passages that use them."""
        words = self._content_words(text)
        return bool(words) and all(self._stem.stemWord(w) in self.doc_freq and _zipf(w) == 0.0 for w in words)


class _Names:
    """The names in code a corpus writes, by kind (see `_DOTTED`, `_FLAG`, `_SNAKE`).

    Names are compared by their words, whatever joins them: "read_concurrency" is the name the
    corpus writes as "--read-concurrency", "session_state" the one in "st.session_state".
    """

    def __init__(self) -> None:
        self.spaces: set[str] = set()  # first parts of dotted names: "st" for "st.rerun"
        self.has_flags = False
        self.has_snake = False
        #: Every name's words (`_words_of`): whole names, their parts and every dotted run of their parts.
        self.words: set[str] = set()

    def add(self, text: str) -> None:
        """Record the names of ``text`` (lowercase)."""
        for name in _DOTTED.findall(text):
            parts = name.split(".")
            self.spaces.add(parts[0])
            self.words.update(
                _words_of(".".join(parts[i:j])) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)
            )
        flags = _FLAG.findall(text)
        self.has_flags = self.has_flags or bool(flags)
        self.words.update(map(_words_of, flags))
        snake = _SNAKE_RUN.findall(text)
        self.has_snake = self.has_snake or bool(snake)
        self.words.update(map(_words_of, snake))

    def unknown(self, text: str) -> tuple[str, ...]:
        """The names of ``text`` this corpus does not write, of kinds it does, as ``text`` writes them."""
        out = [n for n in _DOTTED.findall(text) if n.lower().split(".")[0] in self.spaces]
        if self.has_flags:
            out += _FLAG.findall(text)
        if self.has_snake:
            out += _SNAKE.findall(text)
        return tuple(n for n in dict.fromkeys(out) if not self.writes(_words_of(n)))

    def writes(self, words: str) -> bool:
        """Whether the corpus writes the name of these words, allowing one typo in a long name
        ("target_link_libaries" for "target_link_libraries"), as `CorpusProfile.known` allows one
        in a long word: a ratio of `TYPO_RATIO` or more, and at most one character more or less."""
        if words in self.words:
            return True
        if len(words) < TYPO_NAME_CHARS:
            return False
        near = (w for w in self.words if abs(len(w) - len(words)) <= 1 and w[:1] == words[:1])
        return bool(difflib.get_close_matches(words, list(near), n=1, cutoff=TYPO_RATIO))


def _words_of(name: str) -> str:
    """A name's words, however joined: "--read-concurrency" and "read_concurrency" are "read concurrency"."""
    return " ".join(re.split(r"[._-]+", name.lower().lstrip("-")))
