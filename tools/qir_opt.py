"""qir-opt: run qir passes on IR text files, like mlir-opt.

    qir-opt model.mlir -p canonicalize,fold-bn --timing -o out.mlir
    qir-opt tests.mlir --split-input-file --verify-diagnostics

Built on xDSL's driver (`xDSLOptMain`), so its options and conventions hold:
`--split-input-file`, `--print-op-generic`, `--allow-unregistered-dialect`,
`-p` in MLIR's `pass{opt=value}` syntax. qir adds the weights beside the
file (`model.safetensors` next to `model.mlir`, read and written), the stage
check before anything runs, `--print-ir-after-all`, `--timing`, and
mlir-opt's `--verify-diagnostics` (each `// expected-error {{...}}` must be
matched by an error on that line, and every error must be expected).

User errors print one line, `file:line:col: error: ...` or
`qir-opt: error: ...`, exit with status 1 and write no output file.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from io import StringIO

from xdsl.xdsl_opt_main import xDSLOptMain

EXPECTED = re.compile(r"//\s*expected-(error|warning|remark)\s*(@(?:[+-]\d+|above|below))?\s*\{\{(.*?)\}\}")


@dataclass
class Expectation:
    line: int
    message: str
    seen: bool = False


def expectations(chunk: str, line_offset: int) -> list[Expectation]:
    """The `// expected-error` annotations of a chunk, with the line each refers to."""
    found = []
    for index, text in enumerate(chunk.splitlines()):
        for match in EXPECTED.finditer(text):
            line = index + 1 + line_offset
            where = match.group(2)
            if where in ("@above", "@below"):
                line += -1 if where == "@above" else 1
            elif where:
                line += int(where[1:])
            found.append(Expectation(line, match.group(3).strip()))
    return found


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
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument("--print-ir-after-all", action="store_true",
                                help="print the IR after each pass, to stderr")
        arg_parser.add_argument("--timing", action="store_true",
                                help="report each pass's time and rewrites, to stderr")

    def setup_pipeline(self):
        """Deferred to `run`, where a bad pipeline is a one-line error."""

    def run(self):  # noqa: C901 - the driver's whole loop, kept in one place
        from qir.errors import ParseFailure, QirError
        from qir.params import ParamStore, weights_path
        from qir.pass_manager import PassManager
        from qir.program import Program, param_checker
        from qir.textio import parse_module

        name = self.args.input_file or "<stdin>"
        manager = PassManager(self.args.passes, timing=self.args.timing,
                              print_ir_after_all=self.args.print_ir_after_all, stream=sys.stderr)
        data = (open(self.args.input_file, "rb") if self.args.input_file else sys.stdin.buffer).read()
        if b"\0" in data:
            raise ParseFailure(name, 1, 1, "input is binary, not IR text")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ParseFailure(name, 1, 1, f"input is not UTF-8 text ({err.reason})") from None
        store = ParamStore()
        if self.args.input_file and weights_path(self.args.input_file).exists():
            store = ParamStore.load(weights_path(self.args.input_file))

        chunks = text.split("// -----") if self.args.split_input_file else [text]
        outputs: list[str] = []
        results: list[Program] = []
        failures: list[str] = []
        offset = 0
        for chunk in chunks:
            expected = expectations(chunk, offset) if self.args.verify_diagnostics else []
            try:
                self.ctx.params = store.copy()
                module = parse_module(chunk, self.ctx, name, line_offset=offset,
                                      check=param_checker(self.ctx.params))
                result = manager.run(Program(module, self.ctx.params))
                results.append(result)
                outputs.append(self._print(result))
            except QirError as err:
                if not self.args.verify_diagnostics:
                    raise
                failures += self._match(err, expected, name)
            failures += [f"{name}:{e.line}:1: error: expected error was not produced: {e.message!r}"
                         for e in expected if not e.seen]
            offset += chunk.count("\n")
        if failures:
            raise QirError("\n".join(failures))
        out = "// -----\n".join(outputs)
        if self.args.output_file:
            with open(self.args.output_file, "w") as f:
                f.write(out)
            used = set().union(*(r.param_names() for r in results)) if results else set()
            if used:
                merged = ParamStore({n: t for r in results for n, t in r.params.items() if n in used})
                merged.save(weights_path(self.args.output_file), used)
        else:
            sys.stdout.write(out)
            unsaved = {n for r in results for n in r.param_names()} - set(store)
            if unsaved:
                print(f"qir-opt: warning: {len(unsaved)} new weights (e.g. {sorted(unsaved)[0]!r}) are not "
                      "printed; write with -o to keep them beside the output", file=sys.stderr)

    def _print(self, program) -> str:
        from xdsl.printer import Printer

        stream = StringIO()
        Printer(stream=stream, print_generic_format=self.args.print_op_generic,
                print_debuginfo=self.args.print_debuginfo).print_op(program.module)
        stream.write("\n")
        return stream.getvalue()

    @staticmethod
    def _match(err, expected: list[Expectation], name: str) -> list[str]:
        line = getattr(err, "line", None)
        message = getattr(err, "message", str(err))
        for e in expected:
            if not e.seen and (line is None or e.line == line) and e.message in message:
                e.seen = True
                return []
        return [f"{err}" if line is not None else f"{name}: unexpected error: {err}"]


def main(argv: list[str] | None = None) -> int:
    from qir.errors import QirError

    try:
        QirOptMain(description="qir's modular optimizer driver", args=argv).run()
    except QirError as err:
        message = str(err)
        if not re.match(r"^\S+:\d+:\d+: error: ", message):
            message = f"qir-opt: error: {message}"
        print(message, file=sys.stderr)
        return 1
    except (OSError, RecursionError, MemoryError) as err:
        detail = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
        where = getattr(err, "filename", None)
        print(f"qir-opt: error: {where + ': ' if where else ''}{detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
