"""Run the files one pipeline wrote stage by stage, and say how each computes against the last.

    %python %S/../Inputs/run_stages.py %s %t.quantized.mlir %t.reference.mlir %t.lowered.mlir --error 0.02

The first file is the float program; each next one is loaded as `qir.load` reads it (the text and
the weights beside it), run on the same seeded inputs, and compared: the first quantized stage
with float (its quantization error, at most `--error` of the largest float output), every later
one with the stage before it (equal up to `--rounding` of it: lowering changes kernels, not
numbers). One line per file, e.g. `quantized: within 0.02 of float` or `lowered: equal to reference
up to 1e-05`, for FileCheck; a stage that fails to load or run, or computes otherwise, ends the run
with status 1.

Inputs are made from the float program's signature: a float tensor is seeded normal values, an
integer one ids in [0, --ids-below)."""

import argparse
import sys
import warnings

import torch
import torch.utils._pytree as pytree

warnings.simplefilter("ignore")

import qir  # noqa: E402


def inputs(program, ids_below: int) -> tuple:
    func = next(op for op in program.module.walk() if op.name == "func.func")
    g = torch.Generator().manual_seed(0)
    made = []
    for arg in func.args:
        shape = tuple(arg.type.get_shape())
        if "i64" in str(arg.type.element_type):
            made.append(torch.randint(0, ids_below, shape, generator=g))
        else:
            made.append(torch.randn(shape, generator=g))
    return tuple(made)


def flat(outputs) -> torch.Tensor:
    return torch.cat([t.reshape(-1).float() for t in pytree.tree_leaves(outputs)])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("float")
    parser.add_argument("stages", nargs="+")
    parser.add_argument("--error", type=float, required=True, help="the quantization error allowed, relative")
    parser.add_argument("--rounding", type=float, default=1e-5, help="the gap allowed between stages, relative")
    parser.add_argument("--ids-below", type=int, default=1)
    args = parser.parse_args()

    program = qir.load(args.float)
    batch = inputs(program, args.ids_below)
    with torch.no_grad():
        previous_name, previous = program.stage, flat(program.to_fx()(*batch))
        print(f"{previous_name}: runs")
        for path in args.stages:
            stage = qir.load(path)
            got = flat(stage.to_fx()(*batch))
            gap = float((got - previous).abs().max() / previous.abs().max())
            allowed = args.error if previous_name == "float" else args.rounding
            if not gap <= allowed:
                print(f"{stage.stage}: {gap:.3g} away from {previous_name}, more than {allowed:g}", file=sys.stderr)
                return 1
            print(f"{stage.stage}: within {allowed:g} of float" if previous_name == "float"
                  else f"{stage.stage}: equal to {previous_name} up to {allowed:g}")
            previous_name, previous = stage.stage, got
    return 0


if __name__ == "__main__":
    sys.exit(main())
