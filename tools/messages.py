"""What the command-line tools share about their messages."""

from __future__ import annotations


def one_line(message: str) -> str:
    """Diagnostics are one line: the lines of a longer message (xDSL's context dumps, torch's
    multi-line errors) are joined."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return " ".join(lines) if lines else message
