"""What the command-line tools share about reading the files they are given.

IR text is checked before xDSL's parser sees it (a NUL byte or bytes that are not
UTF-8 get a located one-line error), and `.pt2` archives are loaded with
torch.export's own logging kept off stderr. Every failure is an `InputError` or a
`ParseFailure`, whose message is the whole diagnostic.
"""

from __future__ import annotations

import logging
import os
import zipfile


class InputError(Exception):
    """A problem with what the user gave (arguments, files, data): the message is the diagnostic."""


def decode_ir(data: bytes, name: str) -> str:
    """The text of IR file `name` (a UTF-8 byte-order mark dropped), or a located error."""
    from qir.errors import ParseFailure

    nul = data.find(b"\0")
    if nul >= 0:
        line, col = _line_col(data, nul)
        raise ParseFailure(name, line, col, "input is binary (a NUL byte), not IR text")
    if data.startswith(b"\xef\xbb\xbf"):  # as some editors write
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = _line_col(data, err.start)
        raise ParseFailure(name, line, col, f"input is not UTF-8 text ({err.reason})") from None


def _line_col(data: bytes, index: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, index) + 1
    return data.count(b"\n", 0, index) + 1, index - line_start + 1


def load_pt2(path: str):
    """The ExportedProgram in `path`, or a one-line reason why there is none."""
    if not os.path.exists(path):
        raise InputError(f"{path}: No such file or directory")
    if os.path.isdir(path):
        raise InputError(f"{path}: Is a directory")
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not a .pt2 archive (torch.export.save writes a zip file)")
    import torch

    # torch.export.load logs a traceback as a warning before it tries its legacy format:
    # keep it from stderr, and keep its reason for the message.
    logger = logging.getLogger("torch.export")
    capture = _Capture()
    saved = logger.propagate, logger.handlers[:], logger.level
    logger.propagate, logger.handlers = False, [capture]
    logger.setLevel(logging.WARNING)
    try:
        return torch.export.load(path)
    except Exception as err:  # noqa: BLE001 - any failure to deserialize is the file's
        cause = capture.errors[0] if capture.errors and "warnings above" in str(err) else err
        raise InputError(f"{path}: cannot load a torch.export program: {_first_line(cause)}") from None
    finally:
        logger.propagate, logger.handlers = saved[0], saved[1]
        logger.setLevel(saved[2])


class _Capture(logging.Handler):
    """Records the exceptions that log records carry."""

    def __init__(self):
        super().__init__()
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
