"""Chat page: cited answers about prompt engineering vs fine-tuning, and a guided recommendation.

Run with `make run` (or `streamlit run streamlit_app.py`).

The conversation lives on the server, under a session id kept in the page's URL (``?c=…``), so a
reload keeps it. A rebuild started here runs on a background thread and finishes whatever the user
does meanwhile; the page also notices a newer index built elsewhere (`assistant index`) and says so.
Text that comes from the corpus is rendered without raw HTML and without images.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import streamlit as st

from assistant import Assistant, AssistantError, Settings
from assistant.answer import EXAMPLES_LEAD
from assistant.chunking import sentence_spans
from assistant.corpus import SUPPORTED_SUFFIXES, add_file
from assistant.errors import InvalidQuestionError
from assistant.guide import CORRECT, GuideSession, Recommendation, wants_recommendation
from assistant.validation import validate_question

logger = logging.getLogger("streamlit_app")

STARTERS = (
    "What is the difference between prompt engineering and fine-tuning?",
    "How long does fine-tuning take?",
    "What is LoRA?",
    "Can I use both approaches together?",
)
ASK, GUIDE = "Ask", "Get a recommendation"
APPROACH_ICONS = {
    "prompt_engineering": ":material/edit_note:",
    "fine_tuning": ":material/tune:",
    "hybrid": ":material/merge:",
}
_MARKER = re.compile(r"\s*\[\d+\]")
_CITE = re.compile(r"\[(\d+)\]")
_IMAGE = re.compile(r"!\[([^\]]*)\]\s*(?:\([^)]*\)|\[[^\]]*\])")
_SESSION_ID = re.compile(r"[0-9a-f]{32}")
#: Guided dialogs kept in memory for reloads; a design bound (one dialog is a few kB), not a measurement.
MAX_GUIDE_SESSIONS = 500
#: A question longer than this is shown cut in its bubble when it is refused for its length.
SHOWN_CHARS = 200
# Soft enough to read through, in light and dark themes alike.
_MARK_STYLE = (
    "background-color: rgba(255, 170, 40, 0.32); color: inherit; padding: 0.05em 0.15em; border-radius: 0.25em"
)

st.set_page_config(page_title="Prompt engineering or fine-tuning?", page_icon="🧭", layout="centered")


@st.cache_resource(show_spinner="Loading the embedding model and the index…")
def load_assistant(settings: Settings) -> Assistant:
    """One engine per process and configuration (`Settings` is hashable, so each configuration gets its own)."""
    return Assistant.open(settings)


# -- safe rendering of corpus text ----------------------------------------------------------


def safe_markdown(text: str) -> str:
    """Markdown from the corpus or an answer, made inert: raw HTML shown as text, images as their alt text.

    Dollar signs stay literal (Streamlit would typeset "$5 to $10" as maths).
    """
    text = html.escape(text, quote=False)
    text = _IMAGE.sub(lambda m: m.group(1), text)
    return text.replace("$", r"\$")


def plain_markdown(text: str) -> str:
    """Text typed by the user, for st.markdown: the same treatment as corpus text."""
    return safe_markdown(text)


def cited_markdown(text: str, message_id: str) -> str:
    """An answer's Markdown with each [n] marker a link that opens source n of the same answer."""
    return _CITE.sub(
        lambda m: f'<a class="cite" href="#src-{message_id}-{m.group(1)}" data-n="{m.group(1)}">[{m.group(1)}]</a>',
        safe_markdown(text),
    )


def highlighted(passage: dict[str, Any], answer_text: str) -> str:
    """The passage as HTML, with the sentences the answer quotes verbatim marked; images become alt text."""
    quoted = _MARKER.sub("", answer_text)
    text = passage["text"]
    out, cursor = [], 0
    for start, end in sentence_spans(text):
        start += len(text[start:end]) - len(text[start:end].lstrip())  # the mark starts at the first word
        sentence = text[start:end].strip(" -*\t")
        out.append(safe_markdown(text[cursor:start]))
        piece = safe_markdown(text[start:end])
        out.append(
            f"<mark style='{_MARK_STYLE}'>{piece}</mark>" if len(sentence) > 20 and sentence in quoted else piece
        )
        cursor = end
    out.append(safe_markdown(text[cursor:]))
    return "".join(out).replace("\n", "<br>")


def source_label(n: int, title: str, section: str) -> str:
    """The expander label of a numbered source: "[n] Title — Section", with no image or link markup."""
    label = f"[{n}] {title} — {section}" if section else f"[{n}] {title}"
    return _IMAGE.sub(lambda m: m.group(1), label).replace("$", r"\$")


def page_script(focus: int) -> None:
    """Behaviour Streamlit has no widget for: copy buttons, [n] links opening their source, input focus.

    ``focus`` changes when the chat input should take the keyboard focus (after a starter button).
    """
    st.html(
        f"""
<style>
@media (max-width: 640px) {{
  [data-testid="stExpander"] summary [data-testid="stMarkdownContainer"] p {{
    white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
}}
a.cite {{ text-decoration: none; font-weight: 600; }}
button.copy-answer {{ font-size: 0.8rem; padding: 0.15rem 0.6rem; border-radius: 0.5rem; cursor: pointer;
  border: 1px solid rgba(128,128,128,0.4); background: transparent; color: inherit; }}
</style>
<script>
(function () {{
  const doc = window.parent && window.parent.document ? window.parent.document : document;
  if (!doc.__assistantHandlers) {{
    doc.__assistantHandlers = true;
    doc.addEventListener("click", function (event) {{
      const cite = event.target.closest && event.target.closest("a.cite");
      if (cite) {{
        event.preventDefault();
        const message = cite.closest('[data-testid="stChatMessage"]');
        const n = cite.dataset.n;
        const boxes = message ? message.querySelectorAll('[data-testid="stExpander"] details') : [];
        for (const box of boxes) {{
          const label = box.querySelector("summary");
          const text = label && label.querySelector('[data-testid="stMarkdownContainer"]');
          if (text && text.textContent.trim().startsWith("[" + n + "]")) {{
            if (!box.open) label.click();
            box.scrollIntoView({{block: "center"}});
            break;
          }}
        }}
        return;
      }}
      const copy = event.target.closest && event.target.closest("button.copy-answer");
      if (copy) {{
        const text = copy.dataset.text;
        const done = () => {{ copy.textContent = "Copied"; setTimeout(() => copy.textContent = "Copy", 1500); }};
        if (navigator.clipboard && window.isSecureContext) {{
          navigator.clipboard.writeText(text).then(done);
        }} else {{
          const area = doc.createElement("textarea");
          area.value = text; doc.body.appendChild(area); area.select();
          doc.execCommand("copy"); area.remove(); done();
        }}
      }}
    }});
  }}
  const focus = {focus};
  if (focus && doc.__assistantFocus !== focus) {{
    doc.__assistantFocus = focus;
    const tries = [0, 100, 300, 800];
    for (const wait of tries) setTimeout(() => {{
      const box = doc.querySelector('[data-testid="stChatInputTextArea"]');
      if (box && doc.activeElement !== box) box.focus();
    }}, wait);
  }}
}})();
</script>
""",
        unsafe_allow_javascript=True,
        width="content",
    )


def _attribute(text: str) -> str:
    """``text`` as an HTML attribute value that survives Markdown: escaped, newlines as references."""
    return html.escape(text).replace("\n", "&#10;")


def copy_button(text: str) -> None:
    """A button that copies ``text`` (the answer's Markdown, markers included) to the clipboard."""
    st.markdown(
        # Newlines as character references: a blank line would end Markdown's HTML block mid-attribute.
        f'<button class="copy-answer" type="button" title="Copy the answer" data-text="{_attribute(text)}">'
        "Copy</button>",
        unsafe_allow_html=True,
    )


# -- the conversation, kept on the server ------------------------------------------------------


def conversations_dir(settings: Settings) -> Path:
    """Where conversations are saved: beside the feedback log."""
    return settings.feedback_path.parent / "conversations"


def conversation_id() -> str:
    """The session id in the URL (``?c=…``), created on the first visit."""
    sid = st.query_params.get("c", "")
    if not _SESSION_ID.fullmatch(sid):
        sid = uuid.uuid4().hex
        st.query_params["c"] = sid
    return sid


def load_messages(settings: Settings, sid: str) -> list[dict[str, Any]]:
    """The saved conversation of ``sid``, or an empty one (a damaged file is logged and set aside)."""
    path = conversations_dir(settings) / f"{sid}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["messages"] if isinstance(data.get("messages"), list) else []
    except FileNotFoundError:
        return []
    except (OSError, ValueError, AttributeError) as exc:
        logger.warning("Conversation %s could not be read (%s); starting a new one", sid, exc)
        return []


def save_messages(settings: Settings, sid: str, messages: list[dict[str, Any]]) -> None:
    """Write the conversation atomically, so a crash mid-write never leaves half a file."""
    folder = conversations_dir(settings)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{sid}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps({"messages": messages}, ensure_ascii=False), encoding="utf-8")
        tmp.replace(folder / f"{sid}.json")
    except OSError as exc:
        logger.warning("Conversation %s could not be saved (%s)", sid, exc)
        st.toast("This conversation could not be saved; it will be lost on reload.", icon=":material/warning:")


@st.cache_resource
def guide_sessions() -> dict[str, GuideSession]:
    """Guided dialogs by conversation id, for this server process (a reload keeps the dialog)."""
    return {}


def conversation_markdown(messages: list[dict[str, Any]]) -> str:
    """The conversation as a Markdown document, each answer followed by its numbered sources."""
    lines = ["# Conversation", "", f"Exported {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.", ""]
    for message in messages:
        if message["role"] == "user":
            lines += [f"## {message['content']}", ""]
            continue
        lines += [message["content"], ""]
        answer = message.get("answer")
        if answer and answer.get("citations"):
            lines += ["Sources:", ""]
            for n, c in enumerate(answer["citations"], 1):
                where = f"{c['title']} — {c['section']}" if c.get("section") else c["title"]
                lines.append(f"{n}. {where} ({c['source']}, characters {c['start']}–{c['end']})")
                lines += ["", *(f"   > {line}" for line in c["text"].strip().splitlines()), ""]
    return "\n".join(lines).rstrip() + "\n"


# -- feedback ------------------------------------------------------------------------------


def log_feedback(settings: Settings, message: dict[str, Any], rating: int | None) -> bool:
    """Append one rating, with what was rated, to the feedback JSONL file; False when withdrawn."""
    if rating is None:  # the rating was withdrawn
        return False
    answer = message["answer"]
    record = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "rating": "up" if rating == 1 else "down",
        "question": answer["question"],
        "query": answer["query"],
        "answer": answer["text"],
        "sources": [{k: c[k] for k in ("source", "title", "section", "start", "end")} for c in answer["citations"]],
    }
    settings.feedback_path.parent.mkdir(parents=True, exist_ok=True)
    with settings.feedback_path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return True


def rate(settings: Settings, message: dict[str, Any]) -> None:
    """Log the thumbs just given (called once per change of the rating), and say so."""
    try:
        if log_feedback(settings, message, st.session_state.get(f"feedback-{message['id']}")):
            st.toast("Thanks, your rating was recorded.", icon=":material/check:")
    except OSError as exc:
        st.toast(f"Your rating could not be saved: {exc}", icon=":material/warning:")


# -- chat ----------------------------------------------------------------------------------


def question_buttons(questions: tuple[str, ...] | list[str], key: str) -> None:
    """Clickable questions that wrap like tags; a click asks the question."""
    with st.container(horizontal=True, gap="small"):
        for n, question in enumerate(questions):
            st.button(question, key=f"{key}-{n}", on_click=queue_question, args=(question,), icon=":material/chat:")


def refusal_parts(text: str) -> tuple[str, str, list[str]]:
    """A refusal's opening, the closest passage's quote when the engine is unsure, and the example questions."""
    body, _, tail = text.partition(EXAMPLES_LEAD)
    head, _, quote = body.strip().partition("\n\n")
    return head.strip(), quote.strip(), [line[2:].strip() for line in tail.splitlines() if line.startswith("- ")]


def show_answer(message: dict[str, Any], index: int, settings: Settings) -> None:
    """An answer with its numbered sources, copy and thumbs; a refusal with questions to ask instead."""
    answer = message["answer"]
    if not answer["answerable"]:
        head, quote, examples = refusal_parts(answer["text"])
        st.info(safe_markdown(head), icon=":material/block:")
        if quote:  # unsure: the closest passage, cited, so the reader can judge
            st.markdown(cited_markdown(quote, message["id"]), unsafe_allow_html=True)
            show_sources(answer)
        if examples:
            st.caption("Questions these documents can answer:")
            question_buttons(examples, f"example-{index}")
        offer_guide(message)
        return
    st.markdown(cited_markdown(answer["text"], message["id"]), unsafe_allow_html=True)
    if answer.get("note"):
        st.caption(safe_markdown(answer["note"]))
    if answer["query"] != answer["question"]:
        st.caption(f":material/search: Searching for: *{safe_markdown(answer['query'])}*")
    show_sources(answer)
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        copy_button(answer["text"])
        st.feedback("thumbs", key=f"feedback-{message['id']}", on_change=rate, args=(settings, message))
    offer_guide(message)


def show_sources(answer: dict[str, Any]) -> None:
    """The cited passages, numbered as the markers, each in an expander with the quoted sentences highlighted."""
    for n, source in enumerate(answer["citations"], 1):
        with st.expander(source_label(n, source["title"], source["section"])):
            st.markdown(
                f"<div style='line-height:1.65'>{highlighted(source, answer['text'])}</div>", unsafe_allow_html=True
            )
            st.caption(
                f":material/description: {safe_markdown(source['source'])}, "
                f"characters {source['start']:,}–{source['end']:,}"
            )


def offer_guide(message: dict[str, Any]) -> None:
    """Under "which should I use?": the guided dialog, which answers that for the user's own project."""
    if wants_recommendation(message["answer"]["question"]):
        with st.container(border=True):
            st.markdown("**Want a recommendation for your own project?** A few questions, then a cited answer.")
            st.button(GUIDE, key=f"offer-guide-{message['id']}", on_click=set_mode, args=(GUIDE,),
                      icon=":material/explore:", type="primary")  # fmt: skip


def set_mode(mode: str) -> None:
    """Switch between asking and the guided dialog (from a button)."""
    st.session_state.mode = mode


def queue_question(question: str, mode: str | None = None) -> None:
    """Ask ``question`` on the next run, as if typed, and give the chat input the focus back."""
    st.session_state.pending = question
    st.session_state.focus = st.session_state.get("focus", 0) + 1
    if mode:
        st.session_state.mode = mode


def engine_history(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The turns the engine sees: answered questions and their answers, not the ones that failed."""
    return [
        {"role": m["role"], "content": m["content"]} for m in messages if not m.get("error") and not m.get("failed")
    ]


def refuse_input(question: str, exc: InvalidQuestionError) -> None:
    """A question the engine refuses before searching: no bubble for an empty one, a short one for a long one."""
    if not question.strip():
        st.session_state.input_warning = str(exc)
        return
    shown = (
        question
        if len(question) <= SHOWN_CHARS
        else f"{question[:SHOWN_CHARS].rstrip()}… ({len(question):,} characters)"
    )
    st.session_state.messages.append({"role": "user", "content": shown, "failed": True})
    st.session_state.messages.append({"role": "assistant", "content": str(exc), "error": True})


def answer_now(bot: Assistant, question: str) -> None:
    """Stream the answer to ``question`` into the page and keep it in the history."""
    try:
        validate_question(question, bot.settings.max_question_chars)
    except InvalidQuestionError as exc:
        refuse_input(question, exc)
        return
    history = engine_history(st.session_state.messages)
    asked = {"role": "user", "content": question}
    st.session_state.messages.append(asked)
    with st.chat_message("user"):
        st.markdown(plain_markdown(question))
    final: list[Any] = []
    with st.chat_message("assistant"):
        shown = st.empty()
        text = ""
        try:
            with st.spinner("Searching the documents…"):
                stream = bot.stream(question, history=history)
                first = next(stream, None)
            for piece in [first, *stream] if first is not None else []:
                if isinstance(piece, str):
                    text = piece if getattr(piece, "retracts", False) else text + piece  # a retracted LLM draft goes
                    shown.markdown(safe_markdown(text))  # inert while streaming too: no images, no HTML
                else:
                    final.append(piece)  # the final Answer is authoritative; shown from the history on rerun
        except AssistantError as exc:
            asked["failed"] = True
            st.session_state.messages.append({"role": "assistant", "content": str(exc), "error": True})
            return
    if not final:
        asked["failed"] = True
        st.session_state.messages.append(
            {"role": "assistant", "content": "No answer came back; please ask again.", "error": True}
        )
        return
    answer = final[-1].to_dict()
    answer["question"] = question
    st.session_state.messages.append(
        {"role": "assistant", "content": answer["text"], "answer": answer, "id": f"{time.time_ns()}"}
    )


def chat_page(settings: Settings, sid: str) -> None:
    """The conversation so far, starter questions when it is empty, and the chat input.

    The chat input is drawn before the engine loads, so the first visit is usable at once; a
    question typed meanwhile is answered as soon as the engine is ready.
    """
    for index, message in enumerate(st.session_state.messages):
        with st.chat_message(message["role"]):
            if message.get("answer"):
                show_answer(message, index, settings)
            elif message.get("error"):
                st.warning(safe_markdown(message["content"]), icon=":material/warning:")
            else:
                st.markdown(plain_markdown(message["content"]))

    if not st.session_state.messages:
        with st.container(border=True):
            st.markdown("**Ask a question about prompt engineering and fine-tuning, or start with one of these:**")
            question_buttons(STARTERS, "starter")
    if warning := st.session_state.pop("input_warning", None):
        st.warning(warning, icon=":material/warning:")

    # No max_chars: the browser would cut a long paste silently; the engine refuses it with a clear warning.
    question = st.chat_input("Ask about prompt engineering or fine-tuning", key="chat-input")
    question = question if question is not None else st.session_state.pop("pending", None)
    if question is not None:
        bot = engine(settings)
        answer_now(bot, question)
        save_messages(settings, sid, st.session_state.messages)
        st.rerun()


# -- guided mode ---------------------------------------------------------------------------


def guide_reply(text: str, turn: int | None = None) -> None:
    """Send a typed or quick reply to the guide; a bad reply becomes a warning; a stale click is ignored."""
    try:
        st.session_state.guide.reply(text, turn=turn)
        st.session_state.guide_error = None
    except AssistantError as exc:
        st.session_state.guide_error = str(exc)


def start_over() -> None:
    """Forget the guided dialog and ask for a new description."""
    st.session_state.guide.restart()
    st.session_state.guide_error = None


def recommendation_card(rec: Recommendation) -> None:
    """The recommendation as a card: approach, confidence, cited reasons with the user's words, next steps."""
    with st.container(border=True):
        st.caption("Recommendation")
        st.markdown(f"### {APPROACH_ICONS.get(rec.approach, '')} {rec.label.capitalize()}")
        st.progress(rec.confidence, text=f"Confidence {rec.confidence:.0%}")
        st.caption(
            "Confidence is the share of the decision that nothing you said argues against and that no open "
            "question could still change."
        )
        st.markdown("**Why**")
        st.markdown("\n".join(f"- {safe_markdown(reason)}" for reason in rec.reasons))
        if rec.next_steps:
            st.markdown("**Next steps**")
            st.markdown("\n".join(f"{n}. {safe_markdown(s)}" for n, s in enumerate(rec.next_steps, 1)))
        if rec.caveats:
            st.markdown("**Keep in mind**")
            st.markdown("\n".join(f"- {safe_markdown(c)}" for c in rec.caveats))
        if rec.changes:
            st.markdown("**What would change this**")
            st.markdown("\n".join(f"- {safe_markdown(c[:1].upper() + c[1:])}" for c in rec.changes))
        if rec.citations:
            st.markdown("**Sources**")
        for n, source in enumerate(rec.citations, 1):
            with st.expander(source_label(n, source.title, source.section)):
                st.markdown(f"<div style='line-height:1.65'>{highlighted(source.to_dict(), '')}</div>",
                            unsafe_allow_html=True)  # fmt: skip
                st.caption(
                    f":material/description: {safe_markdown(source.source)}, characters {source.start:,}–{source.end:,}"
                )
        if rec.follow_ups:
            st.markdown("**Ask the documents about it**")
            with st.container(horizontal=True, gap="small"):
                for n, q in enumerate(rec.follow_ups):
                    st.button(q, key=f"follow-up-{n}", on_click=queue_question, args=(q, ASK), icon=":material/chat:")
        st.button("Start over", on_click=start_over, type="primary", key="start-over", icon=":material/restart_alt:")


def guide_page(bot: Assistant, sid: str) -> None:
    """The guided dialog: progress, the transcript, the current question with quick replies, or the card."""
    sessions = guide_sessions()
    if sid not in sessions:
        while len(sessions) >= MAX_GUIDE_SESSIONS:  # the least recently started dialog goes first
            sessions.pop(next(iter(sessions)))
        sessions[sid] = bot.guide()
    st.session_state.guide = session = sessions[sid]
    step = session.last

    st.subheader("Which approach fits your project?")
    if step.recommendation is None and step.asked:
        st.progress(step.asked / step.max_questions, text=f"Question {step.asked} of up to {step.max_questions}")

    transcript = session.history if step.recommendation is not None else session.history[:-1]
    for turn in transcript:
        with st.chat_message(turn["role"]):
            st.markdown(plain_markdown(turn["content"]))

    if step.recommendation is not None:
        recommendation_card(step.recommendation)
        return
    with st.chat_message("assistant"):
        if step.message and step.asked:
            st.caption(safe_markdown(step.message))
        st.markdown(f"**{plain_markdown(step.question or '')}**")
        if step.why and step.message != step.why:
            st.caption(step.why)
        if step.options:
            with st.container(horizontal=True, gap="small"):
                for n, option in enumerate(step.options):
                    st.button(option, key=f"option-{step.turn}-{n}", on_click=guide_reply, args=(option, step.turn))
    if st.session_state.get("guide_error"):
        st.warning(st.session_state.guide_error, icon=":material/warning:")
    if not step.asked:
        placeholder = "Describe your situation…"
    elif step.factor == CORRECT:
        placeholder = "The right fact, in your words"
    else:
        placeholder = "Your answer, an option's number, “what do you mean?” or “start over”"
    if text := st.chat_input(placeholder, key="guide-input"):
        guide_reply(text)
        st.rerun()


# -- the index: background rebuilds, newer generations, documents ----------------------------


@dataclass
class RebuildJob:
    """A rebuild running on a background thread, shared by every session of this server."""

    reason: str
    started: float = field(default_factory=time.time)
    done: int = 0
    total: int = 0
    last_progress: float | None = None
    finished: float | None = None
    result: tuple[str, str] | None = None  # ("success" | "error", message)
    again: bool = False  # another rebuild was asked for while this one ran
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@st.cache_resource
def rebuild_jobs() -> tuple[dict[str, RebuildJob], threading.Lock]:
    """The latest rebuild per index folder, and the lock that keeps it to one at a time."""
    return {}, threading.Lock()


def current_job(settings: Settings) -> RebuildJob | None:
    jobs, lock = rebuild_jobs()
    with lock:
        return jobs.get(str(settings.index_dir))


#: The rebuild, run as its own process (what `assistant index` does), reporting progress as JSON lines.
#: A separate process keeps torch (loaded only to embed) out of the page server, and the page's
#: Python threads cannot slow it down: in-process, importing torch next to the server took minutes.
_REBUILD_SCRIPT = """
import json, sys
from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.ingest import Indexer

def progress(done, total):
    print(json.dumps({"done": done, "total": total}), flush=True)

try:
    report = Indexer.from_defaults(Settings.from_env()).build(progress=progress)
except AssistantError as exc:
    print(json.dumps({"error": str(exc)}), flush=True)
    sys.exit(1)
print(json.dumps({"summary": report.summary()}), flush=True)
"""


def start_rebuild(bot: Assistant, reason: str) -> RebuildJob:
    """Start a rebuild in its own process (or return the one running): it finishes whatever the page does."""
    jobs, lock = rebuild_jobs()
    with lock:
        job = jobs.get(str(bot.settings.index_dir))
        if job is not None and job.finished is None:
            job.again = True  # the corpus changed again meanwhile: build once more when this one ends
            st.session_state.watch_job = job.id
            return job
        job = jobs[str(bot.settings.index_dir)] = RebuildJob(reason)

    def run() -> None:
        while True:
            build_once()
            with lock:
                if not job.again:
                    job.finished = time.time()
                    return
                job.again = False
                job.done = job.total = 0

    def build_once() -> None:
        outcome: dict[str, Any] = {}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _REBUILD_SCRIPT], cwd=Path(__file__).resolve().parent,
                env=rebuild_env(bot.settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert proc.stdout is not None and proc.stderr is not None
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if "total" in event:
                    job.done, job.total, job.last_progress = event["done"], event["total"], time.time()
                else:
                    outcome = event
            errors = proc.stderr.read()
            proc.wait()
            if "summary" in outcome:
                bot.check_index()  # answer from the new index now, not at the next check
                job.result = ("success", outcome["summary"])
            else:
                reason_text = outcome.get("error") or (errors.strip().splitlines() or ["no output"])[-1]
                job.result = ("error", f"The rebuild failed; the previous index is still in use. {reason_text}")
        except Exception as exc:  # a thread must report, never vanish
            logger.exception("The rebuild failed")
            job.result = ("error", f"The rebuild failed unexpectedly ({exc}); the previous index is still in use.")

    threading.Thread(target=run, name="page-rebuild", daemon=True).start()
    st.session_state.watch_job = job.id
    return job


def rebuild_env(settings: Settings) -> dict[str, str]:
    """The page's environment, with the settings it runs on spelled out for the rebuild process."""
    env = dict(os.environ)
    env.update(ASSISTANT_CORPUS=str(settings.corpus_dir), ASSISTANT_INDEX=str(settings.index_dir))
    if settings.chroma_url:
        env["ASSISTANT_CHROMA_URL"] = settings.chroma_url
    return env


def rebuild_progress(job: RebuildJob) -> None:
    """What the running rebuild is doing, with the time it has taken: never a bar stuck without saying why."""
    elapsed = time.time() - job.started
    if not job.total:
        st.progress(0.0, text=f"Checking the corpus and preparing… ({elapsed:.0f} s)")
        return
    since = time.time() - (job.last_progress or job.started)
    text = f"Embedding passages and sentences: {job.done:,} of {job.total:,} done ({elapsed:.0f} s)"
    if job.done < job.total and since > 2:
        text += f"; the next batch has been running for {since:.0f} s"
    st.progress(job.done / job.total, text=text)


def rebuild_panel(settings: Settings) -> None:
    """The running rebuild's progress, refreshed twice a second; a full rerun with its message when it ends."""
    job = current_job(settings)
    watching = st.session_state.get("watch_job")
    if job is None or job.id != watching:
        return
    if job.finished is None:
        rebuild_progress(job)
        return
    st.session_state.watch_job = None
    st.rerun(scope="app")  # the sidebar shows the outcome


def index_watch(bot: Assistant) -> None:
    """Switch to a newer index generation built elsewhere (a cheap manifest check) and rerun to say so."""
    try:
        switch = bot.check_index()
    except AssistantError as exc:
        logger.warning("Checking for a newer index failed: %s", exc)
        return
    if switch is not None or bot.status().generation != st.session_state.get("generation"):
        st.rerun(scope="app")


def generation_notice(bot: Assistant) -> None:
    """Say when the page started answering from another index generation than it last showed."""
    status = bot.status()
    seen = st.session_state.get("generation")
    st.session_state.generation = status.generation
    if seen is not None and seen != status.generation:
        built = datetime.fromtimestamp(status.built_at).strftime("%H:%M:%S")
        text = (
            f"The index was updated (built at {built}): answers now come from {status.documents} "
            f"{'document' if status.documents == 1 else 'documents'}."
        )
        st.session_state.index_notice = text
        st.toast(text, icon=":material/sync:")


def corpus_files(settings: Settings) -> list[str]:
    """The documents in the corpus folder, by name."""
    try:
        return sorted(
            p.name
            for p in settings.corpus_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(SUPPORTED_SUFFIXES)
        )
    except OSError:
        return []


def confirm_removal(name: str | None) -> None:
    """Ask to confirm removing ``name`` (None: stop asking)."""
    st.session_state.confirm_remove = name


def remove_document(bot: Assistant, name: str) -> None:
    """Delete a document from the corpus folder and rebuild, so it stops being searchable."""
    st.session_state.confirm_remove = None
    settings = bot.settings
    if name not in corpus_files(settings):
        st.session_state.remove_result = ("error", f"{name} is no longer in the corpus folder.")
        return
    try:
        (settings.corpus_dir / name).unlink()
    except OSError as exc:
        st.session_state.remove_result = ("error", f"{name} could not be removed: {exc}")
        return
    st.session_state.remove_result = ("success", f"Removed {name}. Rebuilding the index so it is no longer searched.")
    start_rebuild(bot, f"removed {name}")


def documents_panel(bot: Assistant) -> None:
    """Remove a document, after confirming."""
    names = corpus_files(bot.settings)
    with st.expander("Remove a document"):
        if not names:
            st.caption("The corpus folder has no documents.")
            return
        name = st.selectbox("Document", names, key="remove-choice", index=None, placeholder="Choose a document")
        confirm = st.session_state.get("confirm_remove")
        if confirm and confirm in names:
            st.warning(f"Remove **{safe_markdown(confirm)}** from the corpus folder? The file is deleted.")
            c1, c2 = st.columns(2)
            c1.button("Yes, remove it", key="remove-yes", type="primary", on_click=remove_document, args=(bot, confirm))
            c2.button("Cancel", key="remove-no", on_click=confirm_removal, args=(None,))
        else:
            st.button("Remove…", key="remove", disabled=name is None, icon=":material/delete:",
                      on_click=confirm_removal, args=(name,))  # fmt: skip
    if result := st.session_state.pop("remove_result", None):
        (st.success if result[0] == "success" else st.error)(result[1])


def upload(bot: Assistant, settings: Settings) -> None:
    """Add the uploaded file to the corpus once, or say why not; nothing is written for a bad file."""
    limit_mb = math.ceil(settings.max_file_bytes / 2**20)
    file = st.file_uploader(
        f"A .md, .txt, .rst or .html file (UTF-8 text, up to {settings.max_file_bytes / 1e6:g} MB)",
        key="upload",
        max_upload_size=limit_mb,
        help="It is added to the corpus folder, then the rebuild makes it searchable. "
        "An existing file of the same name is never replaced.",
    )  # no `type=`: a wrong type gets the same clear refusal as any other bad file
    if file is None:
        st.session_state.pop("upload_result", None)
        return
    if st.session_state.get("uploaded") != file.file_id:
        st.session_state.uploaded = file.file_id
        try:
            doc = add_file(settings.corpus_dir, file.name, file.getvalue(), settings.max_file_bytes)
            st.session_state.upload_result = ("success", f"Added {doc.source}. Rebuild the index to search it.")
        except AssistantError as exc:
            st.session_state.upload_result = ("error", f"Not added: {exc}")


# The sidebar's buttons act in callbacks, which run before the page does: a click is not lost to a
# rerun that cuts the page's run short (a question sent while it runs), as a button's return value can be.


def rebuild_upload(bot: Assistant) -> None:
    """Rebuild after an upload, so the new document is searched."""
    st.session_state.upload_result = None
    start_rebuild(bot, "upload")


def clear_chat(settings: Settings, sid: str) -> None:
    """Forget this session's conversation and guided dialog."""
    st.session_state.messages = []
    save_messages(settings, sid, [])
    guide_sessions().pop(sid, None)


def sidebar(bot: Assistant, settings: Settings, sid: str) -> None:
    """The index for users (documents, when built; details folded), rebuild, documents, the conversation."""
    with st.sidebar:
        status = bot.status()
        st.subheader("Documents")
        built = datetime.fromtimestamp(status.built_at).strftime("%d %b %Y, %H:%M")
        st.metric("Documents", status.documents)
        st.caption(f"Searchable as of {built}")
        if notice := st.session_state.pop("index_notice", None):
            st.info(notice, icon=":material/sync:")
        with st.expander("Technical details"):
            model = status.embed_model.rsplit("/", 1)[-1]
            st.caption(
                f"Chunks: {status.chunks:,}  \nIndex generation: {status.generation}  \nEmbedding model: {model}  \n"
                f"Answers: {settings.llm or 'extractive (no LLM)'}  \nStore: {status.store}  \n"
                f"Corpus folder: {settings.corpus_dir}"
            )
        job = current_job(settings)
        running = job is not None and job.finished is None
        st.button("Rebuild index", width="stretch", key="rebuild", icon=":material/refresh:", disabled=running,
                  on_click=start_rebuild, args=(bot, "button"))  # fmt: skip
        if running and st.session_state.get("watch_job") != job.id:
            st.session_state.watch_job = job.id  # started by another session: show its progress here too
        st.fragment(rebuild_panel, run_every=0.5 if running else None)(settings)
        # The last rebuild's outcome is the index's, shown to every session until the next rebuild
        # starts: kept in a session, it was lost with the session (a browser on a loaded machine
        # reconnects to a new one) or with a rerun that came first.
        if job is not None and job.finished is not None and job.result is not None:
            finished = datetime.fromtimestamp(job.finished).strftime("%H:%M")
            (st.success if job.result[0] == "success" else st.error)(f"Rebuild finished at {finished}. {job.result[1]}")
        st.divider()
        st.subheader("Add a document")
        upload(bot, settings)
        if result := st.session_state.get("upload_result"):
            (st.success if result[0] == "success" else st.error)(result[1])
            if result[0] == "success":
                st.button(
                    "Rebuild now", key="rebuild-after-upload", type="primary", on_click=rebuild_upload, args=(bot,)
                )
        documents_panel(bot)
        st.divider()
        st.subheader("Conversation")
        st.download_button(
            "Export as Markdown", conversation_markdown(st.session_state.messages), file_name="conversation.md",
            mime="text/markdown", width="stretch", key="export", icon=":material/download:",
            disabled=not st.session_state.messages,
        )  # fmt: skip
        st.button("Clear chat", width="stretch", key="clear", icon=":material/delete_sweep:",
                  on_click=clear_chat, args=(settings, sid))  # fmt: skip


# -- page ----------------------------------------------------------------------------------


def engine(settings: Settings) -> Assistant:
    """The engine, or a clear error and a stop when it cannot start."""
    try:
        return load_assistant(settings)
    except AssistantError as exc:
        st.error(f"The assistant could not start. {exc}")
        st.stop()
        raise  # unreachable: st.stop() ends the run


st.title("Prompt engineering or fine-tuning?", anchor=False)
st.caption("Answers quoted from the documents, with a numbered source for every sentence.")
page_script(st.session_state.get("focus", 0))

try:
    settings = Settings.from_env()
except AssistantError as exc:
    st.error(f"The assistant could not start. {exc}")
    st.stop()

sid = conversation_id()
if st.session_state.get("sid") != sid:
    st.session_state.sid = sid
    st.session_state.messages = load_messages(settings, sid)
st.session_state.setdefault("messages", [])
st.session_state.setdefault("mode", ASK)
mode = st.segmented_control(
    "What do you want to do?", [ASK, GUIDE], key="mode", required=True, label_visibility="collapsed",
    help="Ask answers questions from the documents. Get a recommendation asks about your project, then "
    "recommends prompt engineering, fine-tuning or both.",
)  # fmt: skip

if mode == GUIDE:
    bot = engine(settings)
    guide_page(bot, sid)
else:
    chat_page(settings, sid)
    bot = engine(settings)
generation_notice(bot)
st.fragment(index_watch, run_every=3)(bot)
sidebar(bot, settings, sid)
