"""``python -m assistant``: the same command line as ``assistant``."""

from .cli import cli

if __name__ == "__main__":
    cli(prog_name="assistant")
