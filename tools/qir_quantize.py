"""qir-quantize: the main job, from a model to native int8 kernels, with a report.

    qir-quantize resnet18
    qir-quantize model.pt2 --backend onednn --batches 8 -o out/

MODEL is a built-in example (`qir.examples`) or a `.pt2` saved by
`torch.export.save`. It runs static post-training quantization (prepare,
calibrate, convert: the Q/DQ form) and lowers the result to a backend's
kernels (`--backend`, x86 by default; the backend's own quantizer unless
`--quantizer` names one), and reports each stage's time, model size before
and after, float and quantized latency and the speed-up, and the SQNR of the
quantized outputs against float. Calibration uses random batches shaped like
the example inputs, which calibrate ranges poorly: the report says so.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qir-quantize", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="built-in example name or .pt2 file")
    parser.add_argument("--backend", default="x86", help="the backend to lower to (default x86)")
    parser.add_argument("--quantizer", help="x86 or xnnpack (default: the backend's own)")
    parser.add_argument("--batches", type=int, default=4, help="calibration batches (default 4)")
    parser.add_argument("-o", "--output-dir", help="write DIR/model.mlir (and its weights)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except Exception as err:  # noqa: BLE001 - user errors end as one line, never a traceback
        from qir.errors import QirError

        if not isinstance(err, QirError | OSError | KeyError | ValueError):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"qir-quantize: error: {message}", file=sys.stderr)
        return 1


def _size(module) -> int:
    import torch

    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.tell()


def _latency_ms(module, inputs: tuple, runs: int = 20) -> float:
    import statistics

    import torch

    with torch.no_grad():
        for _ in range(3):
            module(*inputs)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            module(*inputs)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _inputs_like(example: tuple, seed: int) -> tuple:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(t.shape, generator=generator, dtype=t.dtype)
                 if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in example)


def _run(args: argparse.Namespace) -> int:
    import warnings

    import torch

    # torch 2.13 deprecates the quantized tensors the x86 kernels run on: known, and said in the docs.
    warnings.filterwarnings("ignore", message="torch.quantize_per_tensor, torch.quantize_per_channel")
    from tqdm import tqdm

    import qir
    from qir.examples import EXAMPLES, example
    from qir.quantizer import quantizer_by_name
    from qir.registry import get_backend

    backend = get_backend(args.backend)
    quantizer = quantizer_by_name(args.quantizer) if args.quantizer else backend.quantizer()
    stages: dict[str, float] = {}
    start = time.perf_counter()
    if args.model in EXAMPLES:
        ex = example(args.model)
        model, inputs = ex.build(), ex.inputs(1)
        print(f"model: {ex.name}: {ex.description}")
        source = torch.export.export(model, inputs)
    elif args.model.endswith(".pt2"):
        source = torch.export.load(args.model)
        model = source.module()
        inputs = source.example_inputs[0] if source.example_inputs else None
        if inputs is None:
            raise ValueError(f"{args.model} carries no example inputs to calibrate with")
    else:
        raise ValueError(f"{args.model!r} is neither a built-in example ({', '.join(EXAMPLES)}) nor a .pt2 file")
    stages["export"] = time.perf_counter() - start

    start = time.perf_counter()
    prepared = qir.prepare(source, inputs, quantizer)
    stages["prepare"] = time.perf_counter() - start
    print("calibration: random batches shaped like the example inputs "
          "(random data calibrates ranges poorly; real data does better)")
    start = time.perf_counter()
    with torch.no_grad():
        for i in tqdm(range(args.batches), desc="calibrating", unit="batch", file=sys.stderr):
            prepared(*_inputs_like(inputs, i))
    stages["calibrate"] = time.perf_counter() - start
    start = time.perf_counter()
    quantized = qir.convert(prepared)
    stages["convert"] = time.perf_counter() - start
    start = time.perf_counter()
    lowered = qir.lower(quantized, backend.name)
    stages[f"lower ({backend.name})"] = time.perf_counter() - start

    with torch.no_grad():
        test = _inputs_like(inputs, 1000)
        expected, got = model(*test), lowered(*test)
    noise = (expected - got).double().norm()
    sqnr = float("inf") if noise == 0 else float(20 * torch.log10(expected.double().norm() / noise))
    float_ms, quantized_ms = _latency_ms(model, test), _latency_ms(lowered, test)
    print("stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    print(f"program: {lowered.qir_program.summary()}")
    print(f"size: float {_size(model) / 1e6:.2f} MB -> quantized {_size(quantized) / 1e6:.2f} MB")
    print(f"latency: float {float_ms:.2f} ms -> {backend.name} {quantized_ms:.2f} ms "
          f"({float_ms / quantized_ms:.2f}x, {torch.get_num_threads()} threads)")
    print(f"output SQNR against float: {sqnr:.2f} dB")
    if args.output_dir:
        out_dir = Path(args.output_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        lowered.qir_program.save(out_dir / "model.mlir")
        print(f"wrote {out_dir / 'model.mlir'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
