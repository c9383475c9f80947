"""qir-translate: into qir's IR from other formats, after mlir-translate's convention.

    qir-translate --import-pt2 model.pt2 -o model.mlir

`--import-pt2` reads a program saved by `torch.export.save` and writes
`model.mlir` with its weights beside it (`model.safetensors`). Errors are one
line and exit with status 1; no output is written then.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qir-translate", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="the file to translate")
    parser.add_argument("--import-pt2", action="store_true", required=True,
                        help="the input is a .pt2 file saved by torch.export.save")
    parser.add_argument("-o", "--output", help="the .mlir file to write (default: print the IR)")
    args = parser.parse_args(argv)
    try:
        import torch

        import qir

        try:
            ep = torch.export.load(args.input)
        except (OSError, RuntimeError, ValueError, KeyError) as err:
            raise qir.QirError(f"{args.input}: cannot load a torch.export program: {err}") from None
        program = qir.import_program(ep)
        if args.output:
            program.save(args.output)
        else:
            sys.stdout.write(program.text())
    except Exception as err:  # noqa: BLE001 - the CLI reports, never shows a traceback
        from qir.errors import QirError

        if not isinstance(err, QirError | OSError):
            raise
        print(f"qir-translate: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
