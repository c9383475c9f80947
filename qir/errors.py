"""The exceptions qir raises at its users: each says what failed, where and why."""

from __future__ import annotations


class QirError(Exception):
    """Base of every error qir reports about its input (never about itself)."""


class UnsupportedError(QirError):
    """The exported program holds something qir cannot represent; the message names the node."""


class ParseFailure(QirError):
    """IR text that does not parse or verify: `file:line:col: error: message`."""

    def __init__(self, filename: str, line: int, column: int, message: str):
        self.filename, self.line, self.column, self.message = filename, line, column, message
        super().__init__(f"{filename}:{line}:{column}: error: {message}")


class PassFailure(QirError):
    """A pass failed; the message names the pass, the op and its location. The input is unchanged."""

    def __init__(self, pass_name: str, message: str, op_text: str | None = None):
        self.pass_name = pass_name
        self.op_text = op_text
        super().__init__(f"pass {pass_name!r} failed: {message}" + (f"\n  at: {op_text}" if op_text else ""))


class PipelineError(QirError):
    """A pipeline that cannot run: unknown pass, bad option, passes out of stage order."""
