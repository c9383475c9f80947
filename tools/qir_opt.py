"""qir-opt: run qir passes on IR text files, like mlir-opt.

    qir-opt model.mlir -p canonicalize,cse,fold-bn --timing -o out.mlir
    qir-opt tests.mlir --split-input-file --verify-diagnostics

Built on xDSL's driver (`xDSLOptMain`), so its options and conventions hold:
`--split-input-file`, `--print-op-generic`, `--print-debuginfo`,
`--allow-unregistered-dialect`, `--no-implicit-module`, `--disable-verify`,
`-t`, `-p` in MLIR's `pass{opt=value}` syntax. What qir adds:

* the weights beside the file: `model.safetensors` next to `model.mlir` is read
  into the context's parameter store (`--weights PATH` names another file, for
  stdin); with `-o out.mlir` the tensors the output names go to
  `out.safetensors`;
* the pass manager's contract: the stage order is checked before any pass
  runs, the IR is verified after each one, `--print-ir-after-all` and
  `--timing` report to stderr (xDSL's `--print-between-passes` and
  `--time-passes` are aliases of them);
* mlir-opt's `--verify-diagnostics`: every `// expected-error {{...}}`
  (`@+N`, `@-N`, `@above`, `@below`; `expected-error-re` with `{{regex}}`
  parts) must be matched by an error on its line whose message contains the
  text, and every error must be expected.

User errors print one line, `file:line:col: error: ...` or
`qir-opt: error: ...`, exit with status 1 and write no output file.
Set QIR_TRACEBACK=1 to see the traceback of an internal error.

Nothing at module level imports torch: `qir-opt --help` starts fast.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from xdsl.xdsl_opt_main import xDSLOptMain

from qir.tools.input_files import decode_ir
from qir.tools.messages import one_line, stdout_closed

if TYPE_CHECKING:
    from xdsl.dialects.builtin import ModuleOp
    from xdsl.ir import Operation
    from xdsl.utils.lexer import Span

    from qir.params import ParamStore
    from qir.program import Program

SPLIT_MARKER = "// -----"
LOCATED = re.compile(r"^\S.*?:\d+:\d+: error: ")


class Located(Exception):
    """An error at `file:line:col` (a pass failure or a misplaced stage, found at an op)."""

    def __init__(self, filename: str, line: int, column: int, message: str):
        self.filename, self.line, self.column, self.message = filename, line, column, message
        super().__init__(f"{filename}:{line}:{column}: error: {message}")


class DiagnosticsMismatch(Exception):
    """`--verify-diagnostics` found errors that were not expected, or expected ones that were not."""


# --------------------------------------------------------------------------
# mlir-opt's --verify-diagnostics
# --------------------------------------------------------------------------

_ANNOTATION = re.compile(
    r"//.*?\bexpected-(error|warning|remark|note)(-re)?(?:\s*@([+-]\d+|above|below))?\s*\{\{(.*)\}\}\s*$"
)


@dataclass
class Expectation:
    """One `// expected-<kind>[@where] {{message}}` annotation."""

    kind: str
    line: int
    """The line the diagnostic must be reported at."""
    message: str
    regex: re.Pattern[str] | None
    where: tuple[int, int]
    """Line and column of the annotation itself, for reporting."""
    seen: bool = False

    def matches(self, kind: str, line: int | None, message: str) -> bool:
        if self.seen or kind != self.kind or line != self.line:
            return False
        return bool(self.regex.search(message)) if self.regex else self.message in message


def _re_pattern(text: str) -> re.Pattern[str]:
    """MLIR's `-re` form: literal text with `{{regex}}` parts."""
    parts, pos = [], 0
    for match in re.finditer(r"\{\{(.*?)\}\}", text):
        parts += [re.escape(text[pos:match.start()]), f"(?:{match.group(1)})"]
        pos = match.end()
    parts.append(re.escape(text[pos:]))
    return re.compile("".join(parts))


def expectations(chunk: str, line_offset: int, filename: str) -> list[Expectation]:
    """The annotations of a chunk, each with the line it refers to."""
    found = []
    for index, text in enumerate(chunk.split("\n")):
        match = _ANNOTATION.search(text)
        if match is None:
            continue
        kind, is_re, where, message = match.groups()
        here = index + 1 + line_offset
        line = here + {"above": -1, "below": 1}.get(where, 0) if where in ("above", "below", None) \
            else here + int(where)
        column = match.start(1) - len("expected-") + 1
        try:
            regex = _re_pattern(message) if is_re else None
        except re.error as err:
            raise Located(filename, here, column, f"invalid regex in expected-{kind}-re: {err}") from None
        found.append(Expectation(kind, line, message, regex, (here, column)))
    return found


def check_diagnostics(error: Exception | None, expected: list[Expectation], filename: str) -> list[str]:
    """mlir-opt's verdict on one chunk: one line per unexpected or missing diagnostic."""
    problems = []
    if error is not None:
        line = getattr(error, "line", None)
        message = getattr(error, "message", None) or one_line(str(error))
        for e in expected:
            if e.matches("error", line, message):
                e.seen = True
                break
        else:
            where = f"{filename}:{line}:{getattr(error, 'column', 1)}" if line else filename
            problems.append(f"{where}: error: unexpected error: {message}")
    for e in expected:
        if not e.seen:
            problems.append(f'{filename}:{e.where[0]}:{e.where[1]}: error: expected {e.kind} '
                            f'"{e.message}" was not produced')
    return problems


# --------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------


class QirOptMain(xDSLOptMain):
    version_format = "qir-opt (xdsl {xdsl_version})"

    def register_all_dialects(self):
        from qir.context import QirContext, register_dialects

        self.ctx = QirContext()
        register_dialects(self.ctx)

    def register_all_passes(self):
        from qir.registry import available_passes

        for name, loader in available_passes().items():
            self.register_pass(name, loader)

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser):
        arg_parser.prog = "qir-opt"
        arg_parser.error = _usage_error  # one line, status 1, like every other user error
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument("--print-ir-after-all", action="store_true",
                                help="print the IR after each pass, to stderr")
        arg_parser.add_argument("--timing", action="store_true",
                                help="report each pass's time, op counts and rewrites, to stderr")
        arg_parser.add_argument("--weights", metavar="PATH",
                                help="the .safetensors file of the input (default: beside the input file)")

    def setup_pipeline(self):
        """The pipeline is qir's PassManager: a bad one is a one-line error before any input is read."""
        from qir.pass_manager import PassManager

        self.manager = PassManager(
            self.args.passes,
            verify=not self.args.disable_verify,
            timing=self.args.timing or self.args.time_passes,
            print_ir_after_all=self.args.print_ir_after_all or self.args.print_between_passes,
            stream=sys.stderr,
        )

    # -- the loop ---------------------------------------------------------

    def run(self):
        from qir.errors import ParseFailure, QirError

        name = self.args.input_file or "<stdin>"
        text = self._read_input(name)
        store = self._read_weights()
        if self.args.split_input_file:
            chunks = text.split(SPLIT_MARKER)
            offsets = [0]
            for chunk in chunks[:-1]:
                offsets.append(offsets[-1] + chunk.count("\n"))
        else:
            chunks, offsets = [text], [0]

        outputs: list[str] = []
        results: list[Program] = []
        problems: list[str] = []
        for chunk, offset in zip(chunks, offsets):
            expected = expectations(chunk, offset, name) if self.args.verify_diagnostics else []
            error = None
            try:
                result = self._process(chunk, name, offset, store)
                outputs.append(self.output_resulting_program(result.module))
                results.append(result)
            except (QirError, Located) as err:
                if self.args.verify_diagnostics:
                    error = err
                elif self.args.parsing_diagnostics and isinstance(err, ParseFailure):
                    print(one_line(str(err)))  # xDSL's convention: report, go on, succeed
                else:
                    raise
            if self.args.verify_diagnostics:
                problems += check_diagnostics(error, expected, name)
        if problems:
            raise DiagnosticsMismatch("\n".join(problems))
        self._write("// -----\n".join(outputs), results, store)

    def _process(self, chunk: str, name: str, offset: int, store: "ParamStore") -> "Program":
        """Parse one chunk (verified, weights checked), then run the pipeline on it."""
        from xdsl.dialects.builtin import ModuleOp

        from qir.program import Program
        from qir.textio import parse_module_located

        params = store.copy()
        self.ctx.params = params
        if not re.sub(r"//[^\n]*", "", chunk).strip():  # mlir-opt reads an empty input as an empty module
            module, spans = ModuleOp([]), {}
        else:
            module, spans = parse_module_located(
                chunk, self.ctx, name, offset, check=_input_checks(params),
                verify=not self.args.disable_verify, implicit_module=not self.args.no_implicit_module)
        program = Program(module, params)
        self._run_pipeline(program, spans, name, offset)
        return program

    def _run_pipeline(self, program: "Program", spans: dict, name: str, offset: int) -> None:
        """`PassManager.run`, in place and in this driver's context, with failures located at their op."""
        from qir.errors import OpError, PassFailure, PipelineError
        from qir.pass_manager import check_stages

        manager = self.manager
        try:
            check_stages(manager.passes, program.stage)
        except PipelineError as err:
            raise self._locate(program.module, spans, name, offset, str(err)) from None
        manager.records = []
        for p in manager.passes:
            try:
                manager._run_one(p, program, self.ctx, verify=manager.verify)  # each pass, as mlir-opt
            except PassFailure as err:
                cause = err.__cause__
                op = cause.op if isinstance(cause, OpError) else _failing_op(program.module)
                raise self._locate(op or program.module, spans, name, offset, str(err),
                                   fallback=program.module) from None
        if manager.timing:
            manager.report_timing()

    def _locate(self, op: "Operation", spans: dict, name: str, offset: int, message: str,
                fallback: "Operation | None" = None) -> Exception:
        """An error at `op`: where it was in the input, else its own location, else the module's."""
        from qir.errors import QirError
        from xdsl.dialects.builtin import FileLineColLoc

        for candidate in (op, fallback):
            if candidate is None:
                continue
            span = spans.get(candidate)
            if span is None and candidate.parent_op() is None:  # an implicit module: its first op
                span = next((spans[o] for o in candidate.walk() if o in spans), None)
            if span is not None:
                loc = span.get_location()
                return Located(name, loc.line + offset, loc.col, message)
            loc = getattr(candidate, "location", None)
            if isinstance(loc, FileLineColLoc):
                return Located(loc.filename.data, loc.line.data, loc.column.data, message)
        return QirError(message)

    # -- files ------------------------------------------------------------

    def _read_input(self, name: str) -> str:
        if self.args.input_file:
            with open(self.args.input_file, "rb") as f:
                return decode_ir(f.read(), name)
        return decode_ir(sys.stdin.buffer.read(), name)

    def _read_weights(self) -> "ParamStore":
        from qir.errors import QirError
        from qir.params import ParamStore, weights_path

        path = self.args.weights or (self.args.input_file and weights_path(self.args.input_file))
        if not path or (not self.args.weights and not os.path.exists(path)):
            return ParamStore()
        try:
            return ParamStore.load(path)
        except OSError:
            raise
        except Exception as err:  # safetensors' own errors: a truncated or foreign file
            raise QirError(f"{path}: cannot read weights: {one_line(str(err))}") from None

    def _write(self, text: str, results: list["Program"], store: "ParamStore") -> None:
        from qir.params import ParamStore, weights_path

        out = self.args.output_file
        if not out or out == "-":
            sys.stdout.write(text)
            unsaved = {n for r in results for n in r.param_names()} - set(store)
            if unsaved:
                print(f"qir-opt: warning: {len(unsaved)} new weights (e.g. {sorted(unsaved)[0]!r}) are not "
                      "printed; write with -o to keep them beside the output", file=sys.stderr)
            return
        merged = ParamStore()
        for r in results:
            for n in sorted(r.param_names()):  # a conflict is reported the same way every run
                tensor = r.params[n]
                other = merged.get(n)
                if other is not None and other is not tensor and not _same_tensor(other, tensor):
                    from qir.errors import QirError

                    raise QirError(f"the chunks name different tensors {n!r}: cannot write one weights file")
                merged[n] = tensor
        wpath = weights_path(out)
        # Both files are written beside their targets first and renamed into place only
        # when complete: an unwritable path, a full disk or an interrupt leaves no output
        # (and no half-written one over an earlier output).
        staged: list[tuple[str, str]] = []
        try:
            text_tmp = _staging_file(out)
            staged.append((text_tmp, out))
            with open(text_tmp, "w") as f:
                f.write(text)
            if len(merged):
                weights_tmp = _staging_file(wpath)
                staged.append((weights_tmp, str(wpath)))
                merged.save(weights_tmp)
            for tmp, target in reversed(staged):  # the weights first, the text that names them last
                _publish(tmp, target)
        finally:
            for tmp, _ in staged:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        if not len(merged) and wpath.exists() and os.path.abspath(wpath) != os.path.abspath(self.args.weights or ""):
            wpath.unlink()  # stale weights of an earlier output would not match this one


def _input_checks(params: "ParamStore"):
    """What the input must satisfy beyond the verifiers: a known stage, weights for every param."""
    from xdsl.dialects.builtin import ModuleOp, StringAttr

    from qir.program import STAGE_ATTR, STAGES, param_checker

    check_param = param_checker(params)

    def check(op) -> str | None:
        if isinstance(op, ModuleOp) and STAGE_ATTR in op.attributes:
            stage = op.attributes[STAGE_ATTR]
            if not isinstance(stage, StringAttr) or stage.data not in STAGES:
                return f"{STAGE_ATTR} must be one of {', '.join(map(repr, STAGES))}, not {stage}"
        return check_param(op)

    return check


def _failing_op(module: "ModuleOp") -> "Operation | None":
    for op in module.walk():
        try:
            op.verify(verify_nested_ops=False)
        except Exception:  # noqa: BLE001 - any verifier failure names the op
            return op
    return None


def _staging_file(target: "str | os.PathLike") -> str:
    """A new empty file beside `target` (same directory, so that renaming it onto `target`
    is atomic); an OSError names `target` when its directory cannot take it."""
    import tempfile

    directory, name = os.path.split(os.path.abspath(target))
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    try:
        fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise type(err)(err.errno, err.strerror, str(target)) from None
    os.close(fd)
    return path


def _publish(staged: str, target: str) -> None:
    """Rename a complete staged file onto `target`, with the permissions open() would give."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staged, 0o666 & ~umask)  # mkstemp (and safetensors) create files 0600
    os.replace(staged, target)


def _same_tensor(a, b) -> bool:
    import torch

    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def _usage_error(message: str) -> NoReturn:
    print(f"qir-opt: error: {message} (see qir-opt --help)", file=sys.stderr)
    sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            QirOptMain(description="qir's modular optimizer driver: runs qir passes on IR text",
                       args=argv).run()
    except BrokenPipeError:
        return stdout_closed()
    except DiagnosticsMismatch as err:
        print(err, file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - the driver reports, it never shows a traceback
        print(_diagnostic(err), file=sys.stderr)
        if os.environ.get("QIR_TRACEBACK") and not _is_user_error(err):
            raise
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning of a pass (an observer that ignored NaN values) is one line, like an error."""
    print(f"qir-opt: warning: {one_line(str(message))}", file=file or sys.stderr)


def _is_user_error(err: Exception) -> bool:
    from qir.errors import QirError

    return isinstance(err, QirError | Located | OSError)


def _diagnostic(err: Exception) -> str:
    """The one line an exception becomes."""
    from qir.errors import QirError

    if isinstance(err, OSError):
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        return f"qir-opt: error: {where}{err.strerror or err}"
    if isinstance(err, RecursionError):
        return "qir-opt: error: input is nested too deeply"
    if isinstance(err, MemoryError):
        return "qir-opt: error: out of memory"
    message = one_line(str(err))
    if isinstance(err, QirError | Located):
        return message if LOCATED.match(message) else f"qir-opt: error: {message}"
    return (f"qir-opt: error: internal error: {type(err).__name__}: {message} "
            "(QIR_TRACEBACK=1 shows where)")


if __name__ == "__main__":
    sys.exit(main())
