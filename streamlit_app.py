"""Chat page: cited answers about prompt engineering vs fine-tuning. Run with `make run`."""

from __future__ import annotations

import streamlit as st

from assistant import Assistant, AssistantError

STARTERS = (
    "What is the difference between prompt engineering and fine-tuning?",
    "How long does fine-tuning take?",
    "What is LoRA?",
    "Can I use both approaches together?",
)

st.set_page_config(page_title="Prompt engineering or fine-tuning?", page_icon="🧭")


@st.cache_resource(show_spinner="Loading the embedding model and the index…")
def load_assistant() -> Assistant:
    """One engine per process."""
    return Assistant.open()


def show_answer(answer: dict) -> None:
    st.markdown(answer["text"])
    if answer.get("query") and answer["query"] != answer["question"]:
        st.caption(f"Searching for: {answer['query']}")
    for n, source in enumerate(answer["citations"], 1):
        label = f"[{n}] {source['title']} — {source['section'] or source['source']}"
        with st.expander(label):
            st.markdown(source["text"])
            st.caption(f"{source['source']}, characters {source['start']}–{source['end']}")


def ask(question: str) -> None:
    history = [{"role": m["role"], "content": m["content"]} for m in st.session_state.messages]
    st.session_state.messages.append({"role": "user", "content": question})
    try:
        answer = bot.ask(question, history=history)
    except AssistantError as exc:
        st.session_state.messages.append({"role": "assistant", "content": f"⚠️ {exc}", "answer": None})
        return
    data = answer.to_dict()
    data["question"] = question
    st.session_state.messages.append({"role": "assistant", "content": answer.text, "answer": data})


st.title("Prompt engineering or fine-tuning?")
st.caption("Answers quoted from the corpus, with a numbered source for every sentence.")

try:
    bot = load_assistant()
except AssistantError as exc:
    st.error(f"The assistant could not start: {exc}")
    st.stop()

st.session_state.setdefault("messages", [])

with st.sidebar:
    status = bot.status()
    st.subheader("Index")
    st.write(f"{status.documents} documents, {status.chunks} chunks")
    st.caption(f"Model: {status.embed_model} · Store: {status.store}")
    if st.button("Rebuild index"):
        with st.spinner("Rebuilding…"):
            report = bot.refresh()
        st.success(report.summary())
    if st.button("Clear chat"):
        st.session_state.messages = []

for message in st.session_state.messages:
    with st.chat_message(message["role"]):
        if message.get("answer"):
            show_answer(message["answer"])
        else:
            st.markdown(message["content"])

if not st.session_state.messages:
    st.write("Try one of these:")
    for starter in STARTERS:
        if st.button(starter, key=f"starter-{starter}"):
            ask(starter)
            st.rerun()

if question := st.chat_input("Ask about prompt engineering or fine-tuning"):
    ask(question)
    st.rerun()
