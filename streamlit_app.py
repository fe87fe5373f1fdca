"""Chat page: cited answers about prompt engineering vs fine-tuning, and a guided recommendation.

Run with `make run` (or `streamlit run streamlit_app.py`).
"""

from __future__ import annotations

import html
import json
import re
import time
from datetime import datetime
from typing import Any, Iterator

import streamlit as st

from assistant import Assistant, AssistantError, Settings
from assistant.answer import EXAMPLE_QUESTIONS
from assistant.chunking import sentence_spans
from assistant.corpus import add_file

STARTERS = (
    "What is the difference between prompt engineering and fine-tuning?",
    "How long does fine-tuning take?",
    "What is LoRA?",
    "Can I use both approaches together?",
)
_MARKER = re.compile(r"\s*\[\d+\]")

st.set_page_config(page_title="Prompt engineering or fine-tuning?", page_icon="🧭", layout="centered")


@st.cache_resource(show_spinner="Loading the embedding model and the index…")
def load_assistant(settings: Settings) -> Assistant:
    """One engine per process and configuration."""
    return Assistant.open(settings)


# -- pure helpers --------------------------------------------------------------------------


def highlighted(passage: dict[str, Any], answer_text: str) -> str:
    """The passage as HTML, with the sentences the answer quotes marked."""
    quoted = _MARKER.sub("", answer_text)
    text = passage["text"]
    out, cursor = [], 0
    for start, end in sentence_spans(text):
        sentence = text[start:end].strip(" -*\t")
        out.append(html.escape(text[cursor:start]))
        piece = html.escape(text[start:end])
        out.append(f"<mark>{piece}</mark>" if len(sentence) > 20 and sentence in quoted else piece)
        cursor = end
    out.append(html.escape(text[cursor:]))
    return "".join(out).replace("\n", "<br>")


def log_feedback(settings: Settings, message: dict[str, Any], rating: int | None) -> None:
    """Append one rating, with what was rated, to the feedback JSONL file."""
    if rating is None:
        return
    answer = message["answer"]
    record = {
        "time": datetime.now().isoformat(timespec="seconds"),
        "rating": "up" if rating == 1 else "down",
        "question": answer["question"],
        "query": answer["query"],
        "answer": answer["text"],
        "sources": [{k: c[k] for k in ("source", "title", "section", "start", "end")} for c in answer["citations"]],
    }
    settings.feedback_path.parent.mkdir(parents=True, exist_ok=True)
    with settings.feedback_path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")


# -- chat ----------------------------------------------------------------------------------


def show_answer(message: dict[str, Any], index: int) -> None:
    answer = message["answer"]
    st.markdown(answer["text"] if answer["answerable"] else answer["text"].split("\n")[0])
    if answer.get("note"):
        st.caption(answer["note"])
    if not answer["answerable"]:
        st.caption("Try one of these instead:")
        for n, example in enumerate(EXAMPLE_QUESTIONS):
            st.button(example, key=f"example-{index}-{n}", on_click=queue_question, args=(example,))
        return
    if answer["query"] != answer["question"]:
        st.caption(f"Searching for: *{answer['query']}*")
    for n, source in enumerate(answer["citations"], 1):
        where = f" — {source['section']}" if source["section"] else ""
        with st.expander(f"[{n}] {source['title']}{where}"):
            st.markdown(
                f"<div style='line-height:1.6'>{highlighted(source, answer['text'])}</div>", unsafe_allow_html=True
            )
            st.caption(f"{source['source']}, characters {source['start']:,}–{source['end']:,}")
    st.feedback("thumbs", key=f"feedback-{message['id']}", on_change=rate, args=(message,))


def rate(message: dict[str, Any]) -> None:
    log_feedback(st.session_state.settings, message, st.session_state.get(f"feedback-{message['id']}"))


def queue_question(question: str) -> None:
    st.session_state.pending = question


def answer_now(bot: Assistant, question: str) -> None:
    """Stream the answer to ``question`` into the page and keep it in the history."""
    history = [{"role": m["role"], "content": m["content"]} for m in st.session_state.messages]
    st.session_state.messages.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        final: list[Any] = []

        def pieces() -> Iterator[str]:
            for piece in bot.stream(question, history=history):
                if isinstance(piece, str):
                    yield piece
                else:
                    final.append(piece)

        try:
            with st.spinner("Searching the documents…"):
                stream = pieces()
                first = next(stream, "")
            st.write_stream(_chain(first, stream))
        except AssistantError as exc:
            st.session_state.messages.append({"role": "assistant", "content": f"⚠️ {exc}", "error": True})
            return
    answer = final[-1].to_dict()
    answer["question"] = question
    st.session_state.messages.append(
        {"role": "assistant", "content": answer["text"], "answer": answer, "id": f"{time.time_ns()}"}
    )


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def chat_page(bot: Assistant) -> None:
    for index, message in enumerate(st.session_state.messages):
        with st.chat_message(message["role"]):
            if message.get("answer"):
                show_answer(message, index)
            elif message.get("error"):
                st.warning(message["content"])
            else:
                st.markdown(message["content"])

    if not st.session_state.messages:
        st.markdown("#### Ask a question, or start with one of these")
        cols = st.columns(2)
        for n, starter in enumerate(STARTERS):
            cols[n % 2].button(starter, key=f"starter-{n}", on_click=queue_question, args=(starter,),
                               use_container_width=True)

    question = st.chat_input("Ask about prompt engineering or fine-tuning", key="chat-input")
    question = question or st.session_state.pop("pending", None)
    if question:
        answer_now(bot, question)
        st.rerun()


# -- guided mode ---------------------------------------------------------------------------


def guide_reply(text: str) -> None:
    session = st.session_state.guide
    try:
        st.session_state.step = session.reply(text)
        st.session_state.guide_error = None
    except AssistantError as exc:
        st.session_state.guide_error = str(exc)


def start_over() -> None:
    st.session_state.step = st.session_state.guide.restart()
    st.session_state.guide_error = None


def recommendation_card(rec: Any) -> None:
    with st.container(border=True):
        st.markdown(f"### Recommendation: {rec.label.capitalize()}")
        st.progress(rec.confidence, text=f"Confidence {rec.confidence:.0%}")
        st.markdown("**Why**")
        st.markdown("\n".join(f"- {reason}" for reason in rec.reasons))
        if rec.next_steps:
            st.markdown("**Next steps**")
            st.markdown("\n".join(f"{n}. {s}" for n, s in enumerate(rec.next_steps, 1)))
        if rec.caveats:
            st.markdown("**Keep in mind**")
            st.markdown("\n".join(f"- {c}" for c in rec.caveats))
        for n, source in enumerate(rec.citations, 1):
            where = f" — {source.section}" if source.section else ""
            with st.expander(f"[{n}] {source.title}{where}"):
                st.markdown(source.text)
                st.caption(f"{source.source}, characters {source.start:,}–{source.end:,}")
        st.button("Start over", on_click=start_over, type="primary", key="start-over")


def guide_page(bot: Assistant) -> None:
    if "guide" not in st.session_state:
        st.session_state.guide = bot.guide()
        st.session_state.step = st.session_state.guide.restart()
    session, step = st.session_state.guide, st.session_state.step

    st.markdown("#### Guided recommendation")
    if step.recommendation is None and step.asked:
        st.progress(step.asked / step.max_questions, text=f"Question {step.asked} of up to {step.max_questions}")

    for turn in session.history[:-1] if step.recommendation is None else session.history:
        with st.chat_message(turn["role"]):
            st.markdown(turn["content"])

    if step.recommendation is not None:
        recommendation_card(step.recommendation)
        return
    with st.chat_message("assistant"):
        if step.message and step.asked:
            st.caption(step.message)
        st.markdown(f"**{step.question}**")
        if step.why:
            st.caption(step.why)
        if step.options:
            cols = st.columns(len(step.options))
            for n, option in enumerate(step.options):
                cols[n].button(option, key=f"option-{step.asked}-{n}", on_click=guide_reply, args=(option,),
                               use_container_width=True)
    if st.session_state.get("guide_error"):
        st.warning(st.session_state.guide_error)
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
        st.session_state.rebuild_result = ("error", f"The rebuild failed; the previous index is still in use: {exc}")
    st.rerun()


def sidebar(bot: Assistant, settings: Settings) -> str:
    with st.sidebar:
        mode = st.radio("Mode", ["Ask", "Guided"], horizontal=True, key="mode",
                        captions=None, help="Guided mode asks about your situation, then recommends an approach.")
        st.divider()
        status = bot.status()
        st.subheader("Index")
        c1, c2 = st.columns(2)
        c1.metric("Documents", status.documents)
        c2.metric("Chunks", status.chunks)
        built = datetime.fromtimestamp(status.built_at).strftime("%Y-%m-%d %H:%M")
        model = status.embed_model.rsplit("/", 1)[-1]
        llm = settings.llm or "extractive (no LLM)"
        st.caption(f"Last built {built}  \nEmbedding model: {model}  \nAnswers: {llm}  \nStore: {status.store}")
        if st.button("Rebuild index", use_container_width=True, key="rebuild"):
            rebuild(bot)
        if result := st.session_state.pop("rebuild_result", None):
            (st.success if result[0] == "success" else st.error)(result[1])
        if st.button("Clear chat", use_container_width=True, key="clear"):
            st.session_state.messages = []
            st.session_state.pop("guide", None)
        st.divider()
        st.subheader("Add a document")
        upload = st.file_uploader("A .md or .txt file", type=["md", "txt"], key="upload")
        if upload is not None and st.session_state.get("uploaded") != upload.file_id:
            st.session_state.uploaded = upload.file_id
            try:
                doc = add_file(settings.corpus_dir, upload.name, upload.getvalue(), settings.max_file_bytes)
                st.session_state.upload_result = ("success", f"Added {doc.source}. Rebuild the index to search it.")
            except AssistantError as exc:
                st.session_state.upload_result = ("error", f"Not added: {exc}")
        if result := st.session_state.get("upload_result"):
            (st.success if result[0] == "success" else st.error)(result[1])
            if result[0] == "success" and st.button("Rebuild now", key="rebuild-after-upload"):
                st.session_state.upload_result = None
                rebuild(bot)
    return mode


# -- page ----------------------------------------------------------------------------------

st.title("Prompt engineering or fine-tuning?")
st.caption("Answers quoted from the documents, with a numbered source for every sentence.")

try:
    settings = Settings.from_env()
    bot = load_assistant(settings)
except AssistantError as exc:
    st.error(f"The assistant could not start: {exc}")
    st.stop()

st.session_state.settings = settings
st.session_state.setdefault("messages", [])
if sidebar(bot, settings) == "Guided":
    guide_page(bot)
else:
    chat_page(bot)
