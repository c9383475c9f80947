"""Where the time goes, per layer type: qir's lowered program (torch.profiler) against ONNX Runtime (its node profile).

    python bench/layer_profile.py --model resnet18 [--calls 30] [--threads 2]
    python bench/layer_profile.py --model minilm [--dynamic]

Both run the same model quantized by their best flow (bench/resnet18.py's and bench/minilm.py's:
ResNet-18 static, qir x86 against ORT's static QDQ; MiniLM qir x86 static, or dynamic with
`--dynamic`, against ORT's dynamic flow). Each op's time is taken at every one of `--calls` calls;
printed per layer type is the sum over its ops of the fastest and of the median run of each op,
both sides side by side. On a machine shared with other work the fastest run of an op is its
cost on a quiet machine, the median what a call paid here: with 2 threads an op waits for both
to be scheduled, so the median of a short op can be many times its fastest run.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from collections import defaultdict

import torch

import ort
from timing import machine

# Layer type of a torch op or an ORT node type: the first category with a word in its lowercased
# name (namespace dropped). The arithmetic of qir's per-token dynamic quantization (extrema,
# reciprocal, round, clamp, the uint8 shift, the rescale) counts as quantization, as ORT's
# DynamicQuantizeLinear does; attention is its matmuls and softmax on both sides.
CATEGORIES = [
    ("conv + add", ("conv2d_add", "qconv2d_pointwise.binary")),
    ("conv", ("conv",)),
    ("quantize / dequantize", ("quantizelinear", "quantize_per", "dequantize", "choose_qparams", "int_repr",
                               "addcmul", "amax", "amin", "round", "reciprocal", "bitwise_xor", "clamp",
                               "maximum", "neg", "zeros", "storage")),
    ("add (residual)", ("qlinearadd", "add")),
    ("linear", ("linear", "gemm", "matmulinteger", "dynamicquantizematmul", "_int_mm")),
    ("attention", ("attention", "scaled_dot_product", "matmul", "bmm", "softmax")),
    ("layer norm", ("layer_norm", "layernorm")),
    ("gelu", ("gelu", "erf")),
    ("pooling", ("pool",)),
    ("embedding", ("embedding", "gather", "index_select")),
    ("layout / copies", ("transpose", "permute", "contiguous", "clone", "copy", "reshape", "view", "flatten",
                         "expand", "unsqueeze", "squeeze", "slice", "select", "empty", "set_")),
]
CASTS = {"to", "_to_copy"}


def category(name: str) -> str:
    op = name.lower().rsplit("::", 1)[-1]
    if op in CASTS:
        return "quantize / dequantize"
    for label, words in CATEGORIES:
        if any(w in op for w in words):
            return label
    return "other elementwise"


def torch_op_times(module, call, calls: int) -> list[tuple[str, list[float]]]:
    """(op name, microseconds of each call) of every top-level ATen / kernel op of one call of
    `module`, in order; `calls` calls are profiled after three warm ones."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        for _ in range(3):
            call(module)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                call(module)
    top = [e for e in prof.events() if e.cpu_parent is None]
    per_call = len(top) // calls
    return [(top[i].name, [top[c * per_call + i].cpu_time_total for c in range(calls)]) for i in range(per_call)]


def ort_node_times(session_path: str, threads: int, call, calls: int) -> list[tuple[str, list[float]]]:
    """(node type, microseconds of each call) of every node ORT ran, in order."""
    session = ort.Session(session_path, threads, profile=True)
    for _ in range(calls):
        call(session)
    return list(ort.node_times(session.end_profiling()).values())


def by_category(ops: list[tuple[str, list[float]]]) -> dict[str, tuple[float, float, int]]:
    """category -> (sum of the fastest runs ms, sum of the medians ms, op count)."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for name, runs in ops:
        entry = totals[category(name)]
        entry[0] += min(runs) / 1e3
        entry[1] += statistics.median(runs) / 1e3
        entry[2] += 1
    return {k: tuple(v) for k, v in totals.items()}


def report(title: str, sides: dict[str, list[tuple[str, list[float]]]]) -> None:
    tables = {name: by_category(ops) for name, ops in sides.items()}
    (a, ta), (b, tb) = tables.items()
    print(title)
    print(f"{'layer type':24} {a + ' fastest':>20} {b + ' fastest':>20} {'ratio':>7}   {a + ' median':>18} "
          f"{b + ' median':>18}   ops")
    order = [label for label, _ in CATEGORIES] + ["other elementwise"]
    zero = (0.0, 0.0, 0)
    for label in order:
        x, y = ta.get(label, zero), tb.get(label, zero)
        if x[2] == 0 and y[2] == 0:
            continue
        ratio = f"{y[0] / x[0]:6.2f}x" if x[0] > 0 and y[0] > 0 else "      -"
        print(f"{label:24} {x[0]:17.3f} ms {y[0]:17.3f} ms {ratio}   {x[1]:15.3f} ms {y[1]:15.3f} ms   {x[2]}/{y[2]}")
    sx = [sum(v[i] for v in ta.values()) for i in (0, 1)]
    sy = [sum(v[i] for v in tb.values()) for i in (0, 1)]
    print(f"{'total':24} {sx[0]:17.3f} ms {sy[0]:17.3f} ms {sy[0] / sx[0]:6.2f}x   {sx[1]:15.3f} ms {sy[1]:15.3f} ms")
    print(f"(ratio: {b}'s time over {a}'s; above 1, {a} is faster)")


def resnet18(args) -> None:
    import qir
    from resnet18 import ort_flows, workload

    model, calibration, x, _ = workload(8)
    prepared = qir.prepare(model, (x,), qir.get_backend("x86").quantizer())
    with torch.no_grad():
        for batch in calibration:
            prepared(batch)
    lowered = qir.lower(qir.convert(prepared), "x86")
    sessions, _ = ort_flows(model, calibration, x, args.threads)
    static = next(s for name, s in sessions.items() if "int8" in name)
    report(f"ResNet-18 1x3x224x224, {args.calls} calls; {machine(args.threads)}", {
        "qir x86": torch_op_times(lowered, lambda m: m(x), args.calls),
        "ORT static": ort_node_times(static.path, args.threads, lambda s: s(x), args.calls),
    })


def minilm(args) -> None:
    import qir
    from minilm import LastHidden, batch, linears, load, sentences
    from qir.quantizer import DynamicQuantizer

    tokenizer, model = load()
    calibration = [batch(tokenizer, sentences(7 * i)) for i in range(4)]
    inputs = batch(tokenizer, sentences(101))
    if args.dynamic:
        lowered = qir.quantize(model, (), quantizer=DynamicQuantizer(), kwargs=inputs, backend="x86")
    else:
        lowered = qir.quantize(model, (), kwargs=inputs, calibration=[((), b) for b in calibration], backend="x86")
    directory = ort.workdir()
    names = ["input_ids", "attention_mask"]
    source, quantized = f"{directory}/minilm.onnx", f"{directory}/minilm_int8.onnx"
    ort.export(LastHidden(model), tuple(inputs[n] for n in names), source, names)
    if args.dynamic:
        ort.quantize_dynamic(source, quantized, per_channel=True)
    else:
        ort.quantize_static(source, quantized, ort.feeds_of(names, calibration), nodes=linears(source),
                            reduce_range=not torch.cpu._is_vnni_supported())
    flow = "dynamic" if args.dynamic else "static"
    report(f"all-MiniLM-L6-v2 16 x 32 tokens, {flow}, {args.calls} calls; {machine(args.threads)}", {
        f"qir x86 {flow}": torch_op_times(lowered, lambda m: m(**inputs), args.calls),
        f"ORT {flow}": ort_node_times(quantized, args.threads, lambda s: s(**inputs), args.calls),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("resnet18", "minilm"), default="resnet18")
    parser.add_argument("--dynamic", action="store_true", help="MiniLM: both sides' dynamic flows")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    why = ort.available()
    if why is not None:
        raise SystemExit(f"ONNX Runtime {why}")
    {"resnet18": resnet18, "minilm": minilm}[args.model](args)


if __name__ == "__main__":
    main()
