"""qir-quantize: the main job, from a model to a compiled program, with a report.

    qir-quantize resnet18
    qir-quantize model.pt2 -p canonicalize -o out/

MODEL is a built-in example (`qir.examples`), a `.pt2` saved by
`torch.export.save`, or a `.mlir` file qir wrote. Today it imports the model,
runs the pipeline, checks the emitted module against the original, and
prints the IR summary and each pass's time; the quantization stages join the
default pipeline as they land.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_PIPELINE = "canonicalize"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qir-quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="built-in example name, .pt2 file or .mlir file")
    parser.add_argument("-p", "--passes", default=DEFAULT_PIPELINE, help="pipeline to run")
    parser.add_argument("-o", "--output-dir", help="write DIR/model.mlir (and its weights)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except Exception as err:  # noqa: BLE001 - every user error ends as one line, no traceback
        from qir.errors import QirError

        if isinstance(err, QirError | OSError | KeyError | ValueError):
            print(f"qir-quantize: error: {str(err).strip(chr(39))}", file=sys.stderr)
            return 1
        raise


def _run(args: argparse.Namespace) -> int:
    import torch

    import qir
    from qir.examples import EXAMPLES, example

    start = time.perf_counter()
    reference = inputs = None
    if args.model in EXAMPLES:
        ex = example(args.model)
        model, inputs = ex.build(), ex.inputs(1)
        print(f"model: {ex.name} — {ex.description}")
        program = qir.import_program(torch.export.export(model, inputs))
        with torch.no_grad():
            reference = model(*inputs)
    elif args.model.endswith(".pt2"):
        program = qir.import_program(torch.export.load(args.model))
    else:
        program = qir.load(args.model)
    print(f"imported in {time.perf_counter() - start:.2f} s: {program.summary()}")

    pm = qir.PassManager(args.passes)
    result = pm.run(program)
    pm.report_timing(sys.stdout)
    print(f"result: {result.summary()}")

    if reference is not None:
        gm = result.to_fx()
        with torch.no_grad():
            out = gm(*inputs)
        diff = (out - reference).abs().max().item()
        print(f"emitted module vs original: max |diff| = {diff:.3g}")
    if args.output_dir:
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        result.save(out_dir / "model.mlir")
        print(f"wrote {out_dir / 'model.mlir'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
