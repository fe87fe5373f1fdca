"""reStructuredText files (`.rst`, docutils' and Sphinx's format), read as the Markdown they render to.

The chunker and the composer read Markdown, so a `.rst` file is parsed with docutils and written
out as Markdown before it is cut into passages (`to_markdown`): sections become "#" headings,
literal blocks fenced code, lists and tables their Markdown forms, and markup no reader sees
(comments, targets, substitution definitions, a table of contents) goes. A passage of a `.rst`
file is therefore a piece of this rendering, and its ``start`` and ``end`` count characters of the
rendering, not of the file.

Sphinx adds roles and directives that docutils does not know. Rather than failing on them or
quoting them as markup, each is read by what it holds, whatever its name:

- a role (":command:`add_executable`", ":py:func:`os.walk`") is its text in code; a cross
  reference to a page, a section or a glossary term (":ref:`Normal Libraries`") is its text;
- a code directive (".. code-block:: python") is fenced code in its language;
- any other directive with a body ("..  note::" is docutils' own; ".. versionadded:: 3.2",
  ".. function:: spam(eggs)", ".. tab:: Linux") is its body, read as reStructuredText, under its
  arguments: a version note says what Sphinx prints ("Added in version 3.2."), a callout, tab or
  card its title in bold, anything else (an object a domain describes) its signature in code;
- a directive with no body (".. autofunction:: spam"), or whose body is no text of the page (a
  ".. toctree::" of page names), shows nothing.

The role and directive names below are Sphinx's and its common extensions' markup vocabulary,
as `markup`'s MyST names are, not knowledge of any corpus.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import threading
from collections.abc import Iterator
from typing import Any

from .markup import PROSE_DIRECTIVES, as_paragraph, fenced

#: Directives whose body is code (Sphinx, sphinx.ext.doctest, IPython and Jupyter extensions).
CODE_DIRECTIVES = frozenset(
    "code-block sourcecode code-cell doctest testcode testoutput productionlist ipython jupyter-execute".split()
)
#: Directives whose body is no text of the page: a table of contents, index entries.
HIDDEN_DIRECTIVES = frozenset({"toctree", "index", "autosummary", "tabularcolumns", "highlight"})
#: Directives whose argument is a condition on the build ("only:: html"), not text of the page.
CONDITION_DIRECTIVES = frozenset({"only", "ifconfig"})
#: Roles that refer to a page, a section or a term by its text, which reads as prose.
TEXT_ROLES = frozenset("ref doc term numref abbr dfn guilabel menuselection download cite".split())
#: Sphinx's version notes and the words it prints before them.
VERSION_NOTES = {
    "versionadded": "Added in version {}.",
    "versionchanged": "Changed in version {}:",
    "deprecated": "Deprecated since version {}:",
    "versionremoved": "Removed in version {}:",
}

_ROLE_NAME = re.compile(r"(?<![\w`]):([A-Za-z](?:[\w.+:-]*\w)?):`")
_SUFFIX_ROLE_NAME = re.compile(r"`:([A-Za-z](?:[\w.+:-]*\w)?):")
_DIRECTIVE_NAME = re.compile(r"^[ \t]*\.\.[ \t]+([A-Za-z][\w.+:-]*?)[ \t]*::", re.MULTILINE)
#: "text <target>" in a role or a reference: the text is what a reader sees.
_TITLED = re.compile(r"^(.*?\S)\s+<[^<>]*>$", re.DOTALL)
#: An object named by its last part only: "~os.path.join", "~Queue.get()".
_LAST_PART = re.compile(r"~[A-Za-z_][\w.]*(?:\(\))?")
#: A section title's underline (or overline): one punctuation character, repeated.
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1+[ \t]*")

#: docutils keeps its roles and directives in module-level registries; the unknown ones of a
#: document are registered for its parse and removed after, under this lock (Sphinx's
#: `docutils_namespace` does the same), so a host application's own docutils use sees none.
_REGISTRY_LOCK = threading.Lock()


def title(text: str) -> str | None:
    """The first section title of a reStructuredText text, read without parsing it: a line of
    text under (and perhaps over) a line of one repeated punctuation character at least as long."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        stripped = line.strip()
        underline = lines[i + 1].rstrip()
        if (
            stripped
            and not stripped.startswith("..")
            # Only a title under an overline may be inset.
            and (not line[:1].isspace() or (i > 0 and lines[i - 1].rstrip() == underline))
            and not _ADORNMENT.fullmatch(stripped)
            and _ADORNMENT.fullmatch(underline)
            and len(underline) >= len(stripped)
        ):
            return re.sub(r"``(.+?)``", r"`\1`", stripped)
    return None


def to_markdown(text: str) -> str:
    """The Markdown rendering of a reStructuredText text (see the module's docstring).

    Markup errors never stop the parse: docutils reads what it can and the rest is left out, as
    a browser shows a page with a broken tag. ``.. include::`` and ``.. raw::`` read nothing.
    """
    from docutils.core import publish_doctree

    settings = {
        "report_level": 5,  # no messages: markup errors are left out, not printed
        "halt_level": 5,
        "warning_stream": io.StringIO(),
        "file_insertion_enabled": False,  # ".. include:: /etc/passwd" reads nothing
        "raw_enabled": False,
        "doctitle_xform": False,  # the first title stays a section, as every other
        "syntax_highlight": "none",
        "_disable_config": True,  # no docutils.conf from the user's folders
    }
    with _REGISTRY_LOCK, _registered(text):
        document = publish_doctree(text, settings_overrides=settings)
    return "\n\n".join(_Writer().blocks(document.children, 1)).strip() + "\n"


@contextlib.contextmanager
def _registered(text: str) -> Iterator[None]:
    """docutils' registries with the roles and directives ``text`` names that docutils lacks."""
    from docutils.parsers.rst import directives, roles

    saved_roles, saved_directives = dict(roles._roles), dict(directives._directives)
    document = _lookup_document()
    try:
        for name in {*_ROLE_NAME.findall(text), *_SUFFIX_ROLE_NAME.findall(text)}:
            if not _known_role(name, document):
                roles.register_local_role(name, _role)
        for name in set(_DIRECTIVE_NAME.findall(text)):
            if not _known_directive(name, document):
                directives.register_directive(name, _directive_class())
        yield
    finally:
        roles._roles.clear()
        roles._roles.update(saved_roles)
        directives._directives.clear()
        directives._directives.update(saved_directives)


def _known_role(name: str, document: Any) -> bool:
    from docutils.parsers.rst import languages, roles

    return roles.role(name, languages.get_language("en", document.reporter), 0, document.reporter)[0] is not None


def _known_directive(name: str, document: Any) -> bool:
    from docutils.parsers.rst import directives, languages

    return directives.directive(name, languages.get_language("en", document.reporter), document)[0] is not None


def _lookup_document() -> Any:
    """A document to look names up in: its reporter reports nothing."""
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser
    from docutils.utils import new_document

    settings = get_default_settings(Parser)
    settings.report_level, settings.warning_stream = 5, io.StringIO()
    return new_document("<lookup>", settings)


def _role(
    name: str, rawtext: str, text: str, lineno: int, inliner: Any, options: Any = None, content: Any = None
) -> tuple[list[Any], list[Any]]:
    """A role docutils does not know: its text, in code unless it refers to prose."""
    from docutils import nodes
    from docutils.utils import unescape

    shown = unescape(text)
    titled = _TITLED.match(shown)
    shown = titled.group(1) if titled else shown
    if shown.startswith("!"):  # Sphinx: no link
        shown = shown[1:]
    elif _LAST_PART.fullmatch(shown):  # Sphinx: ":func:`~os.path.join`" shows "join"
        shown = shown[1:].rsplit(".", 1)[-1]
    if name.rsplit(":", 1)[-1].lower() in TEXT_ROLES:
        return [nodes.inline(rawtext, shown)], []
    return [nodes.literal(rawtext, shown)], []


class _AnyOption(dict[str, Any]):
    """An option spec that takes every option, as text: a Sphinx directive's options are its own."""

    def __missing__(self, key: str) -> Any:
        from docutils.parsers.rst import directives

        return directives.unchanged


@functools.cache
def _directive_class() -> type:
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives

    class Unknown(Directive):
        """A directive docutils does not know, read by what it holds (see the module's docstring)."""

        optional_arguments = 1
        final_argument_whitespace = True
        option_spec = _AnyOption(class_=directives.unchanged)
        has_content = True

        def run(self) -> list[Any]:
            name = self.name.rsplit(":", 1)[-1].lower()
            argument = " ".join(self.arguments[0].split()) if self.arguments else ""
            if name in CODE_DIRECTIVES:
                code = "\n".join(self.content)
                block = nodes.literal_block(code, code)
                block["language"] = argument.split()[0] if argument and name != "productionlist" else ""
                return [block] if code.strip() else []
            if name in HIDDEN_DIRECTIVES:
                return []
            body = nodes.container()
            self.state.nested_parse(self.content, self.content_offset, body)
            if name in VERSION_NOTES:
                version, _, rest = argument.partition(" ")
                note = VERSION_NOTES[name].format(version) + (f" {rest}" if rest else "")
                return [nodes.paragraph("", note), *body.children]
            if not body.children:
                return []  # ".. autofunction:: spam": nothing the page shows here
            if argument and name in PROSE_DIRECTIVES and name not in CONDITION_DIRECTIVES:
                return [nodes.paragraph("", "", nodes.strong(argument, argument)), *body.children]
            if argument and name not in CONDITION_DIRECTIVES:
                return [nodes.paragraph("", "", nodes.literal(argument, argument)), *body.children]
            return body.children

    return Unknown


def _code_span(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


class _Writer:
    """Markdown blocks of a docutils document tree."""

    def blocks(self, children: Any, depth: int) -> list[str]:
        out: list[str] = []
        for child in children:
            out.extend(self.block(child, depth))
        return [b for b in out if b.strip()]

    def block(self, node: Any, depth: int) -> list[str]:
        from docutils import nodes

        if isinstance(
            node,
            (
                nodes.comment,
                nodes.target,
                nodes.substitution_definition,
                nodes.system_message,
                nodes.pending,
                nodes.raw,
                nodes.meta,
                nodes.transition,
                nodes.image,
                nodes.decoration,
            ),
        ):
            return []
        if isinstance(node, nodes.section):
            heading = "#" * min(depth, 6) + " " + self.inline(node[0]) if isinstance(node[0], nodes.title) else ""
            rest = node.children[1:] if heading else node.children
            return [heading, *self.blocks(rest, depth + 1)]
        if isinstance(node, (nodes.title, nodes.rubric, nodes.subtitle)):
            return [f"**{self.inline(node)}**"]
        if isinstance(node, (nodes.paragraph, nodes.caption)):
            return [self.paragraph(node)]
        if isinstance(node, nodes.Text):
            return [" ".join(str(node).split())]
        if isinstance(node, (nodes.literal_block, nodes.doctest_block)):
            language = node.get("language") or next(
                (c for c in node.get("classes", []) if c != "code"),
                "pycon" if isinstance(node, nodes.doctest_block) else "",
            )
            code = node.astext().rstrip("\n")
            return [fenced(code, language)]
        if isinstance(node, nodes.bullet_list):
            return [self.items(node, lambda i: "- ")]
        if isinstance(node, nodes.enumerated_list):
            start = node.get("start", 1)
            return [self.items(node, lambda i: f"{start + i}. ")]
        if isinstance(node, (nodes.definition_list, nodes.field_list, nodes.option_list)):
            return [self.described(node)]
        if isinstance(node, nodes.line_block):
            return ["\n".join(self.inline(line) for line in node.findall(nodes.line) if line.astext().strip())]
        if isinstance(node, nodes.Admonition):
            label = node.tagname.capitalize()
            children = node.children
            if isinstance(node, nodes.admonition) and children and isinstance(children[0], nodes.title):
                label, children = self.inline(children[0]), children[1:]
            inner = self.blocks(children, depth)
            if inner and not inner[0].startswith(("```", "~~~", "- ", "|")):
                return [f"**{label}:** {inner[0]}", *inner[1:]]
            return [f"**{label}:**", *inner]
        if isinstance(node, nodes.table):
            return self.table(node)
        if isinstance(node, nodes.topic) and "contents" in node.get("classes", []):
            return []
        if isinstance(node, (nodes.footnote, nodes.citation)):
            label = node[0].astext() if node.children and isinstance(node[0], nodes.label) else ""
            inner = self.blocks(node.children[1:] if label else node.children, depth)
            return [f"[{label}] {inner[0]}", *inner[1:]] if label and inner else inner
        if isinstance(node, nodes.attribution):
            return [f"— {self.inline(node)}"]
        if isinstance(node, nodes.TextElement) and not node.children:
            return []
        if isinstance(node, nodes.TextElement) and all(
            isinstance(c, (nodes.Text, nodes.Inline)) for c in node.children
        ):
            return [self.paragraph(node)]
        return self.blocks(node.children, depth)

    def paragraph(self, node: Any) -> str:
        text = self.inline(node)
        return as_paragraph(text)

    def items(self, node: Any, marker: Any) -> str:
        items = []
        for i, item in enumerate(node.children):
            inner = self.blocks(item.children, 1)
            prefix = marker(i)
            pad = " " * len(prefix)
            body = "\n\n".join(inner).replace("\n", "\n" + pad)
            items.append(prefix + body.replace("\n" + pad + "\n", "\n\n"))
        loose = any("\n\n" in item for item in items)
        return ("\n\n" if loose else "\n").join(items)

    def described(self, node: Any) -> str:
        """A definition, field or option list as a list of "**term**: description" items."""
        from docutils import nodes

        items = []
        for item in node.children:
            if isinstance(item, nodes.option_list_item):
                term = _code_span(item[0].astext())
                described = item[1].children if len(item.children) > 1 else []
            else:
                terms = [c for c in item.children if isinstance(c, (nodes.term, nodes.field_name))]
                term = "**" + " ".join(self.inline(t) for t in terms) + "**"
                body = next((c for c in item.children if isinstance(c, (nodes.definition, nodes.field_body))), None)
                described = body.children if body is not None else []
            inner = self.blocks(described, 1)
            first = f"{term}: {inner[0]}" if inner and not inner[0].startswith(("```", "~~~", "- ", "|")) else term
            rest = inner[1:] if first != term else inner
            body = "\n\n".join([first, *rest]).replace("\n", "\n  ").replace("\n  \n", "\n\n")
            items.append("- " + body)
        loose = any("\n\n" in item for item in items)
        return ("\n\n" if loose else "\n").join(items)

    def table(self, node: Any) -> list[str]:
        from docutils import nodes

        caption = [f"**{self.inline(c)}**" for c in node.children if isinstance(c, nodes.title)]
        rows = [
            [" ".join(self.blocks(entry.children, 1)).replace("\n", " ").replace("|", "\\|") for entry in row.children]
            for row in node.findall(nodes.row)
        ]
        if not rows:
            return caption
        width = max(len(row) for row in rows)
        rows = [row + [""] * (width - len(row)) for row in rows]
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        return [*caption, "\n".join(lines)]

    def inline(self, node: Any) -> str:
        return " ".join(self._inline(node).split())

    def _inline(self, node: Any) -> str:
        from docutils import nodes

        parts = []
        for child in node.children:
            if isinstance(child, nodes.Text):
                parts.append(str(child))
            elif isinstance(
                child,
                (nodes.footnote_reference, nodes.citation_reference, nodes.system_message, nodes.image, nodes.raw),
            ):
                continue
            elif isinstance(child, (nodes.literal, nodes.math)):
                parts.append(_code_span(" ".join(child.astext().split())))
            elif isinstance(child, (nodes.emphasis, nodes.title_reference)):
                parts.append(f"*{self._inline(child).strip()}*")
            elif isinstance(child, nodes.strong):
                parts.append(f"**{self._inline(child).strip()}**")
            elif isinstance(child, nodes.reference):
                shown, uri = self._inline(child).strip(), child.get("refuri", "")
                external = uri.startswith(("http://", "https://", "mailto:"))
                parts.append(f"[{shown}]({uri})" if external and shown and shown != uri else shown or uri)
            else:
                parts.append(self._inline(child) if isinstance(child, nodes.Element) else child.astext())
        return "".join(parts)
