"""What the CLI writes on stderr: one line per message, control characters escaped. Light on
purpose (no PyTorch), so that the entry point can use it before any command loads."""

from __future__ import annotations

import click


def one_line(message: str) -> str:
    """``message`` with line breaks and other control characters escaped (a file name may hold
    them), so that it prints as one line."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in message)


def report_error(message: str) -> None:
    """One ``error:`` line on stderr for a failure the command continues after (a skipped
    input); the exit code then says that something failed."""
    click.echo(f"error: {one_line(message)}", err=True)


def info(message: str) -> None:
    """One line of information on stderr."""
    click.echo(message, err=True)


_pending: list[str] = []


def defer_note(message: str) -> None:
    """A note for long work (e.g. that the machine is busy), printed by :func:`flush_notes`
    when that work starts, so that a command failing at once still prints one line only."""
    if message not in _pending:
        _pending.append(message)


def flush_notes() -> None:
    """Print the deferred notes once (the first progress bar of a command calls this)."""
    while _pending:
        info(_pending.pop(0))


def clear_notes() -> None:
    """Forget deferred notes (each command line starts with none)."""
    _pending.clear()
