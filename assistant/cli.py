"""The ``assistant`` command line: index the corpus, ask, chat, get guided, serve."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .config import Settings
from .errors import AssistantError

if TYPE_CHECKING:
    from .answer import Answer
    from .engine import Assistant


def _settings(ctx: click.Context) -> Settings:
    return ctx.find_object(Settings)  # type: ignore[return-value]


def _open(ctx: click.Context) -> Assistant:
    """Open the assistant, showing a progress bar if the index has to be (re)built first.

    `Assistant.open` decides whether to build: when another process holds the build lock it
    answers from the current generation instead of waiting for that build.
    """
    from .engine import Assistant
    from .ingest import Indexer

    settings = _settings(ctx)
    indexer = Indexer.from_defaults(settings)
    plan = indexer.plan()
    if plan.up_to_date:
        return Assistant.open(settings, embedder=indexer.embedder, store=indexer.store)
    click.echo(f"Building the index ({plan.reason or 'corpus changed'})...", err=True)
    with _progress_bar() as progress:
        return Assistant.open(settings, embedder=indexer.embedder, store=indexer.store, progress=progress)


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a bar on stderr once there is something to embed."""
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and total:
            bar = click.progressbar(length=total, label="Embedding passages and sentences", file=sys.stderr)
            bar.__enter__()
        if bar is not None:
            bar.update(done - bar.pos)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def _run_build(indexer: Any, full: bool) -> Any:
    with _progress_bar() as progress:
        report = indexer.build(full=full, progress=progress)
    for problem in report.problems:
        click.secho(f"Warning: skipped {problem}", fg="yellow", err=True)
    return report


class _Group(click.Group):
    """Turns our errors into one clear line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AssistantError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            ctx.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="askdocs-cited")
@click.option("--corpus", type=click.Path(path_type=Path), help="Corpus folder [env: ASSISTANT_CORPUS].")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [env: ASSISTANT_INDEX].")
@click.option("--chroma-url", help="Use a Chroma server instead of the local store [env: ASSISTANT_CHROMA_URL].")
@click.option(
    "--llm",
    help="openai:<model>, openai-compatible:<url>:<model>, ollama:<model> or local:<path.gguf> [env: ASSISTANT_LLM].",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.pass_context
def cli(
    ctx: click.Context,
    corpus: Path | None,
    index_dir: Path | None,
    chroma_url: str | None,
    llm: str | None,
    verbose: int,
) -> None:
    """Ask the docs: should we use prompt engineering, fine-tuning, or both?

    Answers come from the Markdown and text files in the corpus folder, with citations.

    Example usage:

    \b
        assistant index
        assistant ask "What is LoRA?"
        assistant chat
        assistant guide
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)  # on the handler too: some libraries set their own loggers to DEBUG
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    ctx.obj = Settings.from_env(corpus_dir=corpus, index_dir=index_dir, chroma_url=chroma_url, llm=llm)


@cli.command(short_help="Build or refresh the index.")
@click.option("--full", is_flag=True, help="Re-embed every file, even unchanged ones.")
@click.pass_context
def index(ctx: click.Context, full: bool) -> None:
    """Build or refresh the index; only new or changed files are embedded.

    Example usage:

    \b
        assistant index
        assistant index --full
        assistant --corpus ~/notes index
    """
    from .ingest import Indexer

    report = _run_build(Indexer.from_defaults(_settings(ctx)), full=full)
    click.echo(report.summary())


@cli.command()
@click.argument("question")
@click.option("-k", "k", default=5, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def retrieve(ctx: click.Context, question: str, k: int, as_json: bool) -> None:
    """Show the passages that best match a question.

    Example usage:

    \b
        assistant retrieve "What is LoRA?" -k 3
    """
    passages = _open(ctx).retrieve(question, k=k)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in passages], indent=2, ensure_ascii=False))
        return
    for i, p in enumerate(passages, 1):
        click.secho(f"[{i}] {p.title} — {p.location}  (score {p.score:.3f})", bold=True)
        click.echo(p.text.strip() + "\n")


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def ask(ctx: click.Context, question: str, as_json: bool) -> None:
    """Answer one question, with numbered sources.

    Example usage:

    \b
        assistant ask "What is LoRA?"
        assistant ask "How long does fine-tuning take?" --json
    """
    answer = _open(ctx).ask(question)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_answer(answer)


@cli.command(short_help="Chat in the terminal, with follow-ups.")
@click.option("--json", "as_json", is_flag=True, help="Print each answer as one JSON line.")
@click.pass_context
def chat(ctx: click.Context, as_json: bool) -> None:
    """Chat in the terminal; follow-up questions keep their context. Ctrl-D or /quit ends.

    Example usage:

    \b
        assistant chat
        printf 'What is fine-tuning?\\nHow long does it take?\\n' | assistant chat --json
    """
    from .guide import wants_recommendation

    bot = _open(ctx)
    history: list[dict[str, str]] = []
    interactive = sys.stdin.isatty()
    if interactive:
        _line_editing()
    if interactive and not as_json:
        # What the corpus in use covers, from its titles: the greeting is right for any corpus.
        click.echo(f"Ask about {bot.retriever.profile.topic}. /help lists the commands, /quit ends.")
    while True:
        try:
            question = input("you> ") if interactive else input()
        except (EOFError, KeyboardInterrupt):
            if interactive:
                click.echo()
            break
        question = question.strip()
        if question in ("/quit", "/exit"):
            break
        if question in ("/help", "/?"):
            click.echo(CHAT_HELP)
            continue
        if question == "/clear":
            if not history:
                click.echo("Nothing to clear.")
            elif not interactive or click.confirm("Forget the conversation so far?", default=False):
                history.clear()
                click.echo("Conversation cleared; the next question starts fresh.")
            continue
        if question.startswith("/"):
            click.echo(f"Unknown command {question.split()[0]}. {CHAT_HELP}")
            continue
        if not question:
            continue
        try:
            answer = bot.ask(question, history=history)
        except AssistantError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            continue
        if as_json:
            click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            if answer.query != question:
                click.secho(f"Searching for: {answer.query}", dim=True)
            _print_answer(answer)
            if wants_recommendation(question):
                click.secho("Tip: `assistant guide` asks about your project and recommends an approach.", dim=True)
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]


CHAT_HELP = """Commands:
  /help   show this list
  /clear  forget the conversation (asks first); follow-ups then start fresh
  /quit   end (or Ctrl-D)
Anything else is a question. Up and down arrows recall earlier questions."""


def _line_editing() -> None:
    """Arrow keys, editing and history for input(), through the standard library's readline."""
    try:
        import readline  # noqa: F401  (importing it is what enables editing in input())
    except ImportError:  # pragma: no cover - Windows without pyreadline
        logging.getLogger(__name__).info("readline is not available; no line editing")


@cli.command(short_help="Get a recommendation for your project.")
@click.pass_context
def guide(ctx: click.Context) -> None:
    """Answer a few questions about your situation and get a recommendation.

    Example usage:

    \b
        assistant guide
    """
    session = _open(ctx).guide()
    interactive = sys.stdin.isatty()
    if interactive:
        _line_editing()
    step = session.restart()
    _print_step(step)
    shown = None
    while True:
        try:
            text = input("you> ") if interactive else input()
        except (EOFError, KeyboardInterrupt):
            break
        if text.strip() in ("/quit", "/exit"):
            break
        try:
            step = session.reply(text)
        except AssistantError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            continue
        if step.recommendation is not None and step.recommendation != shown:  # the card once, until it changes
            if step.message:
                click.echo(step.message)
            shown = step.recommendation
            _print_recommendation(step.recommendation)
            click.echo('\nAsk "why?" for the reasoning, "start over" to begin again, or /quit.')
        else:
            _print_step(step)


def _print_step(step: Any) -> None:
    """A question with its number, why it matters, and numbered options; or the opening prompt."""
    if step.message and step.asked or step.message and step.recommendation is not None:
        click.echo(step.message)
    if not step.question:
        return
    if step.asked:
        click.secho(f"({step.asked} of up to {step.max_questions}) {step.question}", bold=True)
    else:
        click.secho(step.question, bold=True)
    if step.why:
        click.secho(f"  {step.why}", dim=True)
    if step.options:
        click.echo("  " + "   ".join(f"{n}) {o}" for n, o in enumerate(step.options, 1)))
        click.secho("  Type a number, or answer in your own words.", dim=True)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs).

    Example usage:

    \b
        assistant serve --port 8000
        curl -s localhost:8000/v1/ask -H 'content-type: application/json' -d '{"question": "What is LoRA?"}'
    """
    from .api import serve as run_server

    run_server(_settings(ctx), host=host, port=port)


def _print_answer(answer: Answer) -> None:
    """The answer and its sources; Markdown is rendered (rich) on a terminal and left as-is in a pipe."""
    sources = [f"[{i}] {p.title} — {p.location}" for i, p in enumerate(answer.citations, 1)]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markdown import Markdown

        console = Console()
        console.print(Markdown(answer.text))
        if sources:
            console.print("\nSources:", style="bold")
            for line in sources:
                console.print(Markdown(line), style="dim")
    else:
        click.echo(answer.text)
        if sources:
            click.echo("\nSources:")
            for line in sources:
                click.echo(f"  {line}")
    if getattr(answer, "note", None):
        click.secho(answer.note, fg="yellow", err=True)


def _print_recommendation(rec: Any) -> None:
    click.secho(f"\nRecommendation: {rec.label.capitalize()} (confidence {rec.confidence:.0%})", bold=True, fg="green")
    for reason in rec.reasons:
        click.echo(f"  - {reason}")
    if rec.citations:
        click.echo("Sources:")
        for i, p in enumerate(rec.citations, 1):
            click.echo(f"  [{i}] {p.title} — {p.location}")
    for caveat in rec.caveats:
        click.echo(f"  caveat: {caveat}")
    for step in rec.next_steps:
        click.echo(f"  next: {step}")
    for change in rec.changes:
        click.echo(f"  would change it: {change}")


if __name__ == "__main__":  # pragma: no cover
    cli()
