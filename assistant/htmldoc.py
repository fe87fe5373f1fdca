"""HTML files (`.html`, `.htm`), read as the Markdown they render to.

Documentation is often at hand only as HTML: pages a site generator built (Sphinx, MkDocs,
DocBook, Javadoc), a wiki's export, a saved web page. The chunker and the composer read Markdown,
so an HTML file is converted with markdownify (on BeautifulSoup) before it is cut into passages
(`to_markdown`), as a `.rst` file is (`rst`); a passage's ``start`` and ``end`` count characters of
the rendering, not of the file.

Only what a reader reads as the page's text is kept:

- when the page marks its content (one ``<main>`` or ``role="main"``, else one ``<article>``),
  only that;
- never what is no text of the page (scripts, styles, forms, embedded objects, hidden elements),
  navigation (``<nav>``, ARIA navigation, search, banner and page-information landmarks),
  footers, or a header that holds no heading;
- never a block whose text is nothing but links (a table of contents, a list of sibling pages);
- a link is its text, with its address only when that is a web address a reader can follow from
  an answer (a page-relative one cannot be), and a permalink sign ("¶" after a heading) is
  nothing; an image is nothing.

Headings become "#" headings, ``<pre>`` fenced code in the language its classes name, lists and
tables their Markdown forms, and a definition list a list of "**term**: definition" items, as
`rst` writes one; so is a table without a header whose every row is a name and its text. A
callout's title and a ``<summary>`` open the paragraph after them in bold ("**Note:** …").
"""

from __future__ import annotations

import functools
import html
import re
from typing import Any

from .markup import as_paragraph, fence_after, fenced

#: Elements that are no text of the page.
NOT_TEXT = (
    "head title script style noscript template iframe object embed svg canvas math "
    "form button input select textarea dialog nav"
).split()
#: ARIA landmark roles of a page's frame rather than its content.
FRAME_ROLES = frozenset({"navigation", "search", "banner", "contentinfo"})
#: Class-name parts that name a code block's language (Sphinx "highlight-python", Prism and
#: highlight.js "language-js", Google's "lang-sh").
_LANGUAGE_CLASS = re.compile(r"^(?:language|lang|highlight)-([\w+#.-]+)$")
#: Languages that say only "no particular one".
_NO_LANGUAGE = frozenset({"default", "none", "text", "plain", "plaintext", "nohighlight"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_WEB_ADDRESS = re.compile(r"^(?:https?://|mailto:)", re.IGNORECASE)

#: A "**term** : " that opens a definition list's item (`_definition_lists`).
_TERM_SPACE = re.compile(r"^(\*\*.*?\*\*)\s*(:?)[ \t]+")
_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
#: Elements that are part of a block, never a block of links on their own; nor is a heading, whose
#: text is often a link back to a table of contents (docutils' "toc-backref").
_NOT_LINK_BLOCKS = frozenset({"a", "li", "td", "th", "tr", "code", "pre", "span", "strong", "em", "b", "i", *_HEADINGS})
#: Elements a definition starts with that cannot run on after its term.
_BLOCKS = frozenset(["pre", "ul", "ol", "dl", "table", "div", "blockquote", "figure", "hr", *_HEADINGS])

_H1 = re.compile(r"<h1\b[^>]*>(.*?)</h1\s*>", re.IGNORECASE | re.DOTALL)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def title(text: str) -> str | None:
    """The page's title, read without parsing it: its ``<title>``, as a browser's tab shows it
    ("Path | Node.js v20.20.2 Documentation"), else its first ``<h1>``. When the ``<title>`` is the
    first ``<h1>`` and the site's name after it ("Callbacks — Streamlit docs"), the ``<h1>``: the
    page's own name, which its sections then do not repeat, as a Markdown file's title heading.
    A page's first ``<h1>`` alone is no title: it is often the site's name, or the first of
    several sections ("Abstract")."""
    named, heading = (_first_text(pattern, text) for pattern in (_TITLE, _H1))
    if named and heading and named.startswith(heading):
        rest = named[len(heading) :].strip()
        if not rest or not rest[0].isalnum():  # "— CMake documentation", "| Site", "- Docs"
            return heading
    return named or heading


def _first_text(pattern: re.Pattern[str], text: str) -> str | None:
    for match in pattern.finditer(text):
        words = _strip_signs(" ".join(html.unescape(_TAG.sub(" ", match.group(1))).split()))
        if words:
            return words
    return None


def decode(raw: bytes) -> str:
    """An HTML file's text when it is not UTF-8: in the encoding its ``<meta>`` declares
    ("charset=ISO-8859-1"), else in Windows-1252, as browsers read a page that declares none."""
    from bs4.dammit import EncodingDetector

    declared = EncodingDetector.find_declared_encoding(raw, is_html=True)
    for encoding in (declared, "windows-1252"):
        if encoding:
            try:
                return raw.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                continue
    return raw.decode("latin-1")  # five bytes Windows-1252 leaves undefined: every byte is a character


def to_markdown(text: str) -> str:
    """The Markdown rendering of an HTML text (see the module's docstring).

    Broken markup never stops the conversion: the parser reads what it can, as a browser does.
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    root = _content(soup)
    return _tidy(_converter_class()().convert_soup(root)).strip() + "\n"


def _tidy(markdown: str) -> str:
    """``markdown`` without the trailing spaces and runs of blank lines that removed elements leave
    behind, code blocks untouched."""
    out: list[str] = []
    fence = ""
    for line in markdown.split("\n"):
        inside = bool(fence)
        fence = fence_after(line, fence)
        if not inside and not fence:
            line = line.rstrip()  # a space left before a removed or block element
            if not line and out and not out[-1]:
                continue
        out.append(line)
    return "\n".join(out)


def _content(soup: Any) -> Any:
    """The element that holds the page's text, with its frame and non-text elements removed."""
    for element in soup.find_all(NOT_TEXT):
        element.decompose()
    for element in soup.find_all(_hidden):
        if not element.decomposed:
            element.decompose()
    root = _only(soup.find_all(lambda e: e.name == "main" or e.get("role") == "main"))
    root = root or _only(soup.find_all("article")) or soup.body or soup
    for element in root.find_all(["header", "footer"]):
        # A page's or an article's footer, and a header that names nothing: logos, links, bylines.
        if not element.decomposed and (element.name == "footer" or element.find(_HEADINGS) is None):
            element.decompose()
    for element in root.find_all(True):
        if not element.decomposed and _all_links(element):
            element.decompose()
    for label in root.find_all(lambda e: e.name == "summary" or "admonition-title" in (e.get("class") or [])):
        _run_on(soup, label)
    for table in root.find_all("table"):
        _named_rows(soup, table)
    _definition_lists(soup, root)
    for pre in root.find_all("pre"):
        for code in pre.find_all("code", recursive=False)[1:]:  # one block in two forms (Node.js' mjs and cjs)
            code.insert_before("\n\n")
    return root


def _hidden(element: Any) -> bool:
    """Whether the page hides ``element`` from every reader, or it frames the page."""
    return (
        element.has_attr("hidden")
        or element.get("aria-hidden") == "true"
        or bool(_HIDDEN_STYLE.search(element.get("style") or ""))
        or element.get("role") in FRAME_ROLES
    )


def _only(elements: list[Any]) -> Any:
    """The one outermost element of ``elements``, or None when there are several or none."""
    ids = {id(e) for e in elements}
    outermost = [e for e in elements if not any(id(p) in ids for p in e.parents)]
    return outermost[0] if len(outermost) == 1 else None


def _all_links(element: Any) -> bool:
    """Whether ``element`` is a block of two or more links and nothing else a reader reads: its
    text outside the links has no letter or digit. Read in one pass that stops at the first word
    outside a link, as most blocks have one."""
    from bs4.element import NavigableString, PreformattedString

    if element.name in _NOT_LINK_BLOCKS:
        return False
    links = 0
    stack = list(reversed(element.contents))
    while stack:
        node = stack.pop()
        if isinstance(node, PreformattedString):
            continue  # a comment: no reader reads it
        if isinstance(node, NavigableString):
            if any(c.isalnum() for c in node):
                return False
        elif node.name == "a":
            links += any(c.isalnum() for c in node.get_text())  # a permalink sign ("¶") is no link to read
        else:
            stack.extend(reversed(node.contents))
    return links >= 2


def _run_on(soup: Any, label: Any) -> None:
    """A callout's title ("Note", docutils' and MkDocs' ``admonition-title``) or a disclosure's
    ``<summary>`` as `rst` writes one: in bold, opening the paragraph after it ("**Note:** …")."""
    text = " ".join(label.get_text(" ").split())
    after = label.find_next_sibling()
    if not text:
        label.decompose()
        return
    strong = soup.new_tag("strong")
    strong.string = text if text.endswith((":", "?", ".")) else text + ":"
    if after is not None and after.name == "p":
        after.insert(0, " ")
        after.insert(0, strong)
        label.decompose()
    else:
        paragraph = soup.new_tag("p")
        paragraph.append(strong)
        label.replace_with(paragraph)


def _named_rows(soup: Any, table: Any) -> None:
    """A table with no header whose every row is a name and what it names (DocBook's informal
    tables of options or tools) as the definition list it stands for: a Markdown table must have
    a header row, and would take the first row's name and text for column names."""
    if table.decomposed or table.find(["th", "thead"]) is not None or table.find("table") is not None:
        return
    rows = table.find_all("tr")
    cells = [row.find_all("td", recursive=False) for row in rows]
    if not rows or any(len(row) != 2 or row[0].find(_BLOCKS) is not None for row in cells):
        return
    dl = soup.new_tag("dl")
    for name, text in cells:
        dt, dd = soup.new_tag("dt"), soup.new_tag("dd")
        dt.extend(list(name.contents))
        dd.extend(list(text.contents))
        dl.extend([dt, dd])
    table.replace_with(dl)


def _definition_lists(soup: Any, root: Any) -> None:
    """Each ``<dl>`` under ``root`` as a ``<ul>`` of "**term**: definition" items, innermost first."""
    for dl in reversed(root.find_all("dl")):
        ul = soup.new_tag("ul")
        item, defined = None, False  # the item being written, and whether a definition is in it yet
        for child in _groups(dl):
            if child.name == "dt":
                if item is None or defined:
                    item, defined = soup.new_tag("li"), False
                    item.append(soup.new_tag("strong"))
                    ul.append(item)
                if item.strong.contents:  # several terms for one definition
                    item.strong.append(", ")
                if "sig" in (child.get("class") or []):
                    # An object's signature (Sphinx's "sig"), in code as `rst` writes one, not its markup.
                    code = soup.new_tag("code")
                    code.string = _strip_signs(" ".join(child.get_text().split()))
                    item.strong.append(code)
                else:
                    item.strong.extend(list(child.contents))
                continue
            if item is None:  # a definition with no term
                item = soup.new_tag("li")
                ul.append(item)
            first = next((c for c in child.contents if getattr(c, "name", None) or str(c).strip()), None)
            if defined:
                item.append(soup.new_tag("br"))  # another definition of the same term
            elif item.strong is not None and first is not None and getattr(first, "name", None) not in _BLOCKS:
                # The term, then its first definition, as `rst` writes one: "**term**: definition"
                # ("**Returns:** definition" when the term has its colon).
                words = "".join(t for t in item.strong.find_all(string=True) if t.find_parent("code") is None)
                item.append(" " if words.rstrip().endswith(":") else ": ")  # "`$:`" is code, not a colon
                if getattr(first, "name", None) == "p":
                    first.unwrap()
                elif getattr(first, "name", None) is None:
                    first.replace_with(str(first).lstrip())
            item.extend(list(child.contents))
            defined = True
        dl.replace_with(ul)


def _groups(dl: Any) -> list[Any]:
    """The ``<dt>`` and ``<dd>`` children of a ``<dl>``, through the ``<div>`` groups HTML allows."""
    out = []
    for child in dl.find_all(True, recursive=False):
        if child.name == "div":
            out.extend(child.find_all(["dt", "dd"], recursive=False))
        elif child.name in ("dt", "dd"):
            out.append(child)
    return out


#: The permalink signs a heading ends with ("Installing¶", "Setup #"; never the "#" of "C#").
_SIGNS = re.compile(r"(?:\s*[¶§🔗]|\s+#)+\s*$")


def _strip_signs(text: str) -> str:
    """``text`` without the permalink signs a heading ends with."""
    return _SIGNS.sub("", text).strip()


@functools.cache
def _converter_class() -> type:
    from markdownify import ATX, MarkdownConverter

    class Converter(MarkdownConverter):
        class Options(MarkdownConverter.DefaultOptions):
            heading_style = ATX
            bullets = "-"
            escape_asterisks = False
            escape_underscores = False
            table_infer_header = True
            wrap = True  # whitespace, line breaks of the file included, is one space, as a browser shows it
            wrap_width = None  # and lines are never filled again

        def convert_a(self, el: Any, text: str, parent_tags: set[str]) -> str:
            href = el.get("href") or ""
            if not any(c.isalnum() for c in text) and href.startswith("#"):
                return ""  # a permalink sign
            if not _WEB_ADDRESS.match(href) or "_noformat" in parent_tags or "_inline" in parent_tags:
                return text
            return super().convert_a(el, text, parent_tags)

        def convert_img(self, el: Any, text: str, parent_tags: set[str]) -> str:
            return ""

        def convert_br(self, el: Any, text: str, parent_tags: set[str]) -> str:
            return " " if "_inline" in parent_tags else "\n"

        def convert_hN(self, n: int, el: Any, text: str, parent_tags: set[str]) -> str:
            return super().convert_hN(n, el, _strip_signs(text), parent_tags)

        def convert_p(self, el: Any, text: str, parent_tags: set[str]) -> str:
            if "_inline" not in parent_tags:
                stripped = text.strip()
                text = text.replace(stripped, as_paragraph(stripped), 1)
            return super().convert_p(el, text, parent_tags)

        def convert_pre(self, el: Any, text: str, parent_tags: set[str]) -> str:
            if "_inline" in parent_tags:  # code in a table cell or a heading: one line of code
                return " " + super().convert_code(el, " ".join(text.split()), parent_tags - {"_noformat"}) + " "
            code = text.strip("\n")
            if not code.strip():
                return ""
            return f"\n\n{fenced(code, _language(el))}\n\n"

        def convert_td(self, el: Any, text: str, parent_tags: set[str]) -> str:
            return super().convert_td(el, text.replace("|", "\\|"), parent_tags)

        def convert_th(self, el: Any, text: str, parent_tags: set[str]) -> str:
            return super().convert_th(el, text.replace("|", "\\|"), parent_tags)

        def convert_li(self, el: Any, text: str, parent_tags: set[str]) -> str:
            # "**term** : definition": the space is the term's own trailing space, moved out of the bold
            return super().convert_li(el, _TERM_SPACE.sub(r"\1\2 ", text.strip(), count=1), parent_tags)

        def convert_span(self, el: Any, text: str, parent_tags: set[str]) -> str:
            return text

    return Converter


def _language(el: Any) -> str:
    """The language a ``<pre>``'s classes (or its parent's, or its ``<code>``'s) name."""
    code = el.find("code")
    for element in (el, el.parent, code):
        for cls in (element.get("class") or []) if element is not None else []:
            match = _LANGUAGE_CLASS.match(cls)
            if match and match.group(1).lower() not in _NO_LANGUAGE:
                return match.group(1)
    return ""
