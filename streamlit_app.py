"""Chat page: cited answers about prompt engineering vs fine-tuning, and a guided recommendation.

Run with `make run` (or `streamlit run streamlit_app.py`).
"""

from __future__ import annotations

import html
import json
import math
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from assistant import Assistant, AssistantError, Settings
from assistant.answer import EXAMPLE_QUESTIONS
from assistant.chunking import sentence_spans
from assistant.corpus import add_file
from assistant.guide import Recommendation

STARTERS = (
    "What is the difference between prompt engineering and fine-tuning?",
    "How long does fine-tuning take?",
    "What is LoRA?",
    "Can I use both approaches together?",
)
APPROACH_ICONS = {
    "prompt_engineering": ":material/edit_note:",
    "fine_tuning": ":material/tune:",
    "hybrid": ":material/merge:",
}
_MARKER = re.compile(r"\s*\[\d+\]")
# Soft enough to read through, in light and dark themes alike.
_MARK_STYLE = (
    "background-color: rgba(255, 170, 40, 0.32); color: inherit; padding: 0.05em 0.15em; border-radius: 0.25em"
)

st.set_page_config(page_title="Prompt engineering or fine-tuning?", page_icon="🧭", layout="centered")


@st.cache_resource(show_spinner="Loading the embedding model and the index…")
def load_assistant(settings: Settings) -> Assistant:
    """One engine per process and configuration (`Settings` is hashable, so each configuration gets its own)."""
    return Assistant.open(settings)


# -- pure helpers --------------------------------------------------------------------------


def highlighted(passage: dict[str, Any], answer_text: str) -> str:
    """The passage as HTML, with the sentences the answer quotes verbatim marked."""
    quoted = _MARKER.sub("", answer_text)
    text = passage["text"]
    out, cursor = [], 0
    for start, end in sentence_spans(text):
        start += len(text[start:end]) - len(text[start:end].lstrip())  # the mark starts at the first word
        sentence = text[start:end].strip(" -*\t")
        out.append(html.escape(text[cursor:start]))
        piece = html.escape(text[start:end])
        out.append(
            f"<mark style='{_MARK_STYLE}'>{piece}</mark>" if len(sentence) > 20 and sentence in quoted else piece
        )
        cursor = end
    out.append(html.escape(text[cursor:]))
    return "".join(out).replace("\n", "<br>")


def plain_markdown(text: str) -> str:
    """Text for st.markdown with dollar signs kept literal (Streamlit would typeset "$5 to $10" as maths)."""
    return text.replace("$", r"\$")


def log_feedback(settings: Settings, message: dict[str, Any], rating: int | None) -> None:
    """Append one rating, with what was rated, to the feedback JSONL file."""
    if rating is None:  # the rating was withdrawn
        return
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


def source_label(n: int, title: str, section: str) -> str:
    """The expander label of a numbered source: "[n] Title — Section"."""
    return f"[{n}] {title} — {section}" if section else f"[{n}] {title}"


# -- chat ----------------------------------------------------------------------------------


def question_buttons(questions: tuple[str, ...], key: str) -> None:
    """Clickable questions that wrap like tags; a click asks the question."""
    with st.container(horizontal=True, gap="small"):
        for n, question in enumerate(questions):
            st.button(question, key=f"{key}-{n}", on_click=queue_question, args=(question,), icon=":material/chat:")


def show_answer(message: dict[str, Any], index: int, settings: Settings) -> None:
    """An answer with its numbered sources and thumbs; a refusal with questions to ask instead."""
    answer = message["answer"]
    if not answer["answerable"]:
        st.info(answer["text"].split("\n")[0].removesuffix(" You could ask, for example:"), icon=":material/block:")
        st.caption("Questions these documents can answer:")
        question_buttons(EXAMPLE_QUESTIONS, f"example-{index}")
        return
    st.markdown(plain_markdown(answer["text"]))
    if answer.get("note"):
        st.caption(answer["note"])
    if answer["query"] != answer["question"]:
        st.caption(f":material/search: Searching for: *{plain_markdown(answer['query'])}*")
    for n, source in enumerate(answer["citations"], 1):
        with st.expander(source_label(n, source["title"], source["section"])):
            st.markdown(
                f"<div style='line-height:1.65'>{highlighted(source, answer['text'])}</div>", unsafe_allow_html=True
            )
            st.caption(f":material/description: {source['source']}, characters {source['start']:,}–{source['end']:,}")
    st.feedback("thumbs", key=f"feedback-{message['id']}", on_change=rate, args=(settings, message))


def rate(settings: Settings, message: dict[str, Any]) -> None:
    """Log the thumbs just given (called once per change of the rating)."""
    log_feedback(settings, message, st.session_state.get(f"feedback-{message['id']}"))


def queue_question(question: str) -> None:
    """Ask ``question`` on the next run, as if typed."""
    st.session_state.pending = question


def engine_history(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The turns the engine sees: answered questions and their answers, not the ones that failed."""
    return [
        {"role": m["role"], "content": m["content"]} for m in messages if not m.get("error") and not m.get("failed")
    ]


def answer_now(bot: Assistant, question: str) -> None:
    """Stream the answer to ``question`` into the page and keep it in the history."""
    history = engine_history(st.session_state.messages)
    asked = {"role": "user", "content": question}
    st.session_state.messages.append(asked)
    with st.chat_message("user"):
        st.markdown(plain_markdown(question))
    with st.chat_message("assistant"):
        final: list[Any] = []

        def pieces() -> Iterator[str]:
            for piece in bot.stream(question, history=history):
                if isinstance(piece, str):
                    yield plain_markdown(piece)
                else:
                    final.append(piece)  # the final Answer is authoritative; shown from the history on rerun

        try:
            with st.spinner("Searching the documents…"):
                stream = pieces()
                first = next(stream, "")
            st.write_stream(_chain(first, stream))
        except AssistantError as exc:
            asked["failed"] = True
            st.session_state.messages.append({"role": "assistant", "content": str(exc), "error": True})
            return
    answer = final[-1].to_dict()
    answer["question"] = question
    st.session_state.messages.append(
        {"role": "assistant", "content": answer["text"], "answer": answer, "id": f"{time.time_ns()}"}
    )


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    """The first piece (fetched under the spinner), then the rest."""
    yield first
    yield from rest


def chat_page(bot: Assistant, settings: Settings) -> None:
    """The conversation so far, starter questions when it is empty, and the chat input."""
    for index, message in enumerate(st.session_state.messages):
        with st.chat_message(message["role"]):
            if message.get("answer"):
                show_answer(message, index, settings)
            elif message.get("error"):
                st.warning(message["content"], icon=":material/warning:")
            else:
                st.markdown(plain_markdown(message["content"]))

    if not st.session_state.messages:
        with st.container(border=True):
            st.markdown("**Ask a question about prompt engineering and fine-tuning, or start with one of these:**")
            question_buttons(STARTERS, "starter")

    # No max_chars: the browser would cut a long paste silently; the engine refuses it with a clear warning.
    question = st.chat_input("Ask about prompt engineering or fine-tuning", key="chat-input")
    question = question or st.session_state.pop("pending", None)
    if question:
        answer_now(bot, question)
        st.rerun()


# -- guided mode ---------------------------------------------------------------------------


def guide_reply(text: str) -> None:
    """Send a typed or quick reply to the guide; a bad reply becomes a warning."""
    try:
        st.session_state.step = st.session_state.guide.reply(text)
        st.session_state.guide_error = None
    except AssistantError as exc:
        st.session_state.guide_error = str(exc)


def start_over() -> None:
    """Forget the guided dialog and ask for a new description."""
    st.session_state.step = st.session_state.guide.restart()
    st.session_state.guide_error = None


def recommendation_card(rec: Recommendation) -> None:
    """The recommendation as a card: approach, confidence, cited reasons, next steps, "Start over"."""
    with st.container(border=True):
        st.caption("Recommendation")
        st.markdown(f"### {APPROACH_ICONS.get(rec.approach, '')} {rec.label.capitalize()}")
        st.progress(rec.confidence, text=f"Confidence {rec.confidence:.0%}")
        st.markdown("**Why**")
        st.markdown("\n".join(f"- {plain_markdown(reason)}" for reason in rec.reasons))
        if rec.next_steps:
            st.markdown("**Next steps**")
            st.markdown("\n".join(f"{n}. {plain_markdown(s)}" for n, s in enumerate(rec.next_steps, 1)))
        if rec.caveats:
            st.markdown("**Keep in mind**")
            st.markdown("\n".join(f"- {plain_markdown(c)}" for c in rec.caveats))
        if rec.citations:
            st.markdown("**Sources**")
        for n, source in enumerate(rec.citations, 1):
            with st.expander(source_label(n, source.title, source.section)):
                st.markdown(f"<div style='line-height:1.65'>{highlighted(source.to_dict(), '')}</div>",
                            unsafe_allow_html=True)  # fmt: skip
                st.caption(f":material/description: {source.source}, characters {source.start:,}–{source.end:,}")
        st.button("Start over", on_click=start_over, type="primary", key="start-over", icon=":material/restart_alt:")


def guide_page(bot: Assistant) -> None:
    """The guided dialog: progress, the transcript, the current question with quick replies, or the card."""
    if "guide" not in st.session_state:
        st.session_state.guide = bot.guide()
        st.session_state.step = st.session_state.guide.restart()
    session, step = st.session_state.guide, st.session_state.step

    st.subheader("Which approach fits your project?")
    if step.recommendation is None and step.asked:
        st.progress(step.asked / step.max_questions, text=f"Question {step.asked} of up to {step.max_questions}")

    for turn in session.history[:-1] if step.recommendation is None else session.history:
        with st.chat_message(turn["role"]):
            st.markdown(plain_markdown(turn["content"]))

    if step.recommendation is not None:
        recommendation_card(step.recommendation)
        return
    with st.chat_message("assistant"):
        if step.message and step.asked:
            st.caption(step.message)
        st.markdown(f"**{plain_markdown(step.question or '')}**")
        if step.why:
            st.caption(step.why)
        if step.options:
            with st.container(horizontal=True, gap="small"):
                for n, option in enumerate(step.options):
                    st.button(option, key=f"option-{step.asked}-{n}", on_click=guide_reply, args=(option,))
    if st.session_state.get("guide_error"):
        st.warning(st.session_state.guide_error, icon=":material/warning:")
    placeholder = "Describe your situation…" if not step.asked else "Your answer (or “why?”, “start over”)"
    if text := st.chat_input(placeholder, key="guide-input"):
        guide_reply(text)
        st.rerun()


# -- sidebar -------------------------------------------------------------------------------


def rebuild(bot: Assistant) -> None:
    """Run the incremental rebuild with a progress bar, then rerun so the status shows the new counts."""
    bar = st.progress(0.0, text="Checking the corpus…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"Embedding {done} of {total} chunks")

    try:
        report = bot.refresh(progress=progress)
        st.session_state.rebuild_result = ("success", report.summary())
    except AssistantError as exc:
        st.session_state.rebuild_result = ("error", f"The rebuild failed; the previous index is still in use. {exc}")
    st.rerun()


def upload(settings: Settings) -> None:
    """Add the uploaded file to the corpus once, or say why not; nothing is written for a bad file."""
    limit_mb = math.ceil(settings.max_file_bytes / 2**20)
    file = st.file_uploader(
        f"A .md or .txt file (UTF-8 text, up to {settings.max_file_bytes / 1e6:g} MB)",
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


def sidebar(bot: Assistant, settings: Settings) -> str:
    """Mode switch, index status and rebuild, clear chat, upload; returns the mode chosen."""
    with st.sidebar:
        mode = st.radio(
            "Mode", ["Ask", "Guided"], horizontal=True, key="mode",
            help="Ask answers questions from the documents. Guided asks about your project, then recommends an approach.",
        )  # fmt: skip
        st.divider()
        status = bot.status()
        st.subheader("Index")
        c1, c2 = st.columns(2)
        c1.metric("Documents", status.documents)
        c2.metric("Chunks", status.chunks)
        built = datetime.fromtimestamp(status.built_at).strftime("%d %b %Y, %H:%M")
        model = status.embed_model.rsplit("/", 1)[-1]
        llm = settings.llm or "extractive (no LLM)"
        st.caption(f"Last built {built}  \nEmbedding model: {model}  \nAnswers: {llm}  \nStore: {status.store}")
        if st.button("Rebuild index", width="stretch", key="rebuild", icon=":material/refresh:"):
            rebuild(bot)
        if result := st.session_state.pop("rebuild_result", None):
            (st.success if result[0] == "success" else st.error)(result[1])
        if st.button("Clear chat", width="stretch", key="clear", icon=":material/delete_sweep:"):
            st.session_state.messages = []
            st.session_state.pop("guide", None)
        st.divider()
        st.subheader("Add a document")
        upload(settings)
        if result := st.session_state.get("upload_result"):
            (st.success if result[0] == "success" else st.error)(result[1])
            if result[0] == "success" and st.button("Rebuild now", key="rebuild-after-upload", type="primary"):
                st.session_state.upload_result = None
                rebuild(bot)
    return mode


# -- page ----------------------------------------------------------------------------------

st.title("Prompt engineering or fine-tuning?", anchor=False)
st.caption("Answers quoted from the documents, with a numbered source for every sentence.")

try:
    settings = Settings.from_env()
    bot = load_assistant(settings)
except AssistantError as exc:
    st.error(f"The assistant could not start. {exc}")
    st.stop()

st.session_state.setdefault("messages", [])
if sidebar(bot, settings) == "Guided":
    guide_page(bot)
else:
    chat_page(bot, settings)
