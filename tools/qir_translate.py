"""qir-translate: into qir's IR from other formats, after mlir-translate's convention.

    qir-translate --import-pt2 model.pt2 -o model.mlir

`--import-pt2` reads a program saved by `torch.export.save`, imports it
(`qir.import_program`) and writes `model.mlir` with its weights beside it
(`model.safetensors`, see `Program.save`). Without `-o` (or with `-o -`) the
IR is printed and the weights are not written: a warning says so.

Errors are one line, `qir-translate: error: ...`, with exit status 1; no
output is written then. Set QIR_TRACEBACK=1 to see the traceback of an
internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from qir.tools.input_files import InputError, load_pt2
from qir.tools.messages import stdout_closed


def _usage_error(message: str) -> NoReturn:
    print(f"qir-translate: error: {message} (see qir-translate --help)", file=sys.stderr)
    sys.exit(1)


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qir-translate", description=__doc__.split("\n\n")[0])
    parser.error = _usage_error  # one line, status 1, like every other user error
    parser.add_argument("input", help="the file to translate")
    translation = parser.add_mutually_exclusive_group(required=True)
    translation.add_argument("--import-pt2", action="store_true",
                             help="the input is a .pt2 file saved by torch.export.save")
    parser.add_argument("-o", "--output", default="-",
                        help="the .mlir file to write, its weights beside it (default: print the IR)")
    parser.add_argument("--print-debuginfo", action="store_true",
                        help="print each op's location when printing (files written with -o always have them)")
    return parser


def _run(args: argparse.Namespace) -> None:
    import qir

    program = qir.import_program(load_pt2(args.input))
    if args.output == "-":
        sys.stdout.write(program.text(debuginfo=args.print_debuginfo))
        names = program.param_names()
        if names:
            print(f"qir-translate: warning: the {len(names)} weights the IR names are not written; "
                  "use -o FILE.mlir to write them beside it", file=sys.stderr)
    else:
        program.save(args.output)


def main(argv: list[str] | None = None) -> int:
    args = _arguments().parse_args(argv)
    try:
        _run(args)
    except BrokenPipeError:
        return stdout_closed()
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - the tool reports, it never shows a traceback
        from qir.errors import QirError

        user_error = isinstance(err, InputError | QirError | OSError)
        if isinstance(err, OSError) and err.strerror:
            message = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
        else:
            message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        if not user_error:
            message = f"internal error: {type(err).__name__}: {message} (QIR_TRACEBACK=1 shows where)"
        print(f"qir-translate: error: {message}", file=sys.stderr)
        if os.environ.get("QIR_TRACEBACK") and not user_error:
            raise
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
