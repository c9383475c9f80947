"""What the command-line tools share about their messages."""

from __future__ import annotations


def one_line(message: str) -> str:
    """Diagnostics are one line: the lines of a longer message (xDSL's context dumps, torch's
    multi-line errors) are joined."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return " ".join(lines) if lines else message


def stdout_closed() -> int:
    """The exit status once whoever reads the output closed it (`qir-opt m.mlir | head`): the
    tool stops quietly, as one killed by SIGPIPE does (128 + 13), with stdout pointed at
    /dev/null so that the interpreter's last flush does not fail again."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141
