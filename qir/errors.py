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

    internal = False
    """The pass failed with an error of its own (a bug, or invalid IR an earlier pass left)."""

    def __init__(self, pass_name: str, message: str, op_text: str | None = None):
        self.pass_name = pass_name
        self.op_text = op_text
        super().__init__(f"pass {pass_name!r} failed: {message}" + (f" (at {op_text})" if op_text else ""))


class PipelineError(QirError):
    """A pipeline that cannot run: unknown pass, bad option, passes out of stage order."""


class OpError(QirError):
    """Raised by a pass about one op; the pass manager adds the pass name and location."""

    def __init__(self, op, message: str):
        self.op = op
        self.message = message
        super().__init__(f"{describe_op(op)}: {message}")


def describe_op(op) -> str:
    """`aten.op "conv2d.default" (layer1.0.conv1) at model.py:12:0`, for messages."""
    from xdsl.dialects.builtin import FileLineColLoc, StringAttr

    text = op.name
    target = getattr(op, "target", None)
    if isinstance(target, StringAttr):
        text += f' "{target.data}"'
    module = op.attributes.get("module")
    if isinstance(module, StringAttr):
        text += f" ({module.data})"
    loc = getattr(op, "location", None)
    if isinstance(loc, FileLineColLoc):
        text += f" at {loc.filename.data}:{loc.line.data}:{loc.column.data}"
    return text
