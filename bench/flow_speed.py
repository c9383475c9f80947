"""How long the whole static flow takes on big graphs, against torchao's PT2E in the same run.

    python bench/flow_speed.py [--blocks 200,400,800] [--backend x86] [--repeat 3] [--threads 1] [--no-torchao]

The model is a chain of Linear(64, 64) + ReLU blocks: 800 blocks export to 3200 nodes
(two ATen ops and two parameters each). qir's flow is timed stage by stage — export,
prepare (import, canonicalize, fold-bn, annotate, propagate, observers, emit), one
calibration batch (the calibration module's first call, which generates its code), convert
(the Q/DQ program; its module's FX graph is built on first use, which this flow never makes),
lower (reference-rewrite, lower-<backend>, emit, and the lowered module's first call) — and
torchao's `prepare_pt2e` + one batch + `convert_pt2e` on the same exported graph with
X86InductorQuantizer. Printed: seconds per stage, ms per node, the ratio to torchao,
and how the time grows with the node count (1.0 = linear). Each flow runs `--repeat` times
and the fastest run of each stage is kept: the machine may be shared, and the fastest run is
the one least disturbed. The issue's bar: the whole qir flow (prepare, calibrate, convert,
lower) within a tenth of torchao's prepare + calibrate + convert, and linear in the nodes.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import torch

import qir
from timing import machine


def fastest(flow, repeat: int) -> dict[str, float] | None:
    """Each stage's fastest time over `repeat` runs of `flow`."""
    runs = [flow() for _ in range(repeat)]
    if runs[0] is None:
        return None
    return {stage: min(run[stage] for run in runs) for stage in runs[0]}


def chain(blocks: int) -> torch.nn.Module:
    torch.manual_seed(0)
    layers = [torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU()) for _ in range(blocks)]
    return torch.nn.Sequential(*layers).eval()


def qir_flow(model, x, backend: str) -> dict[str, float]:
    times = {}
    start = time.perf_counter()
    exported = torch.export.export(model, (x,))
    times["export"] = time.perf_counter() - start
    start = time.perf_counter()
    prepared = qir.prepare(exported, (x,))
    times["prepare"] = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        prepared(x)
    times["calibrate"] = time.perf_counter() - start
    start = time.perf_counter()
    quantized = qir.convert(prepared)
    times["convert"] = time.perf_counter() - start
    start = time.perf_counter()
    lowered = qir.lower(quantized, backend)
    with torch.no_grad():  # its code is generated on the first call: counted, as any runnable module's
        lowered(x)
    times["lower"] = time.perf_counter() - start
    return times


def torchao_flow(model, x) -> dict[str, float] | None:
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    except Exception:  # noqa: BLE001 - the peer is optional
        return None
    times = {}
    start = time.perf_counter()
    exported = torch.export.export(copy.deepcopy(model), (x,)).module()
    times["export"] = time.perf_counter() - start
    quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    start = time.perf_counter()
    prepared = prepare_pt2e(exported, quantizer)
    times["prepare"] = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        prepared(x)
    times["calibrate"] = time.perf_counter() - start
    start = time.perf_counter()
    convert_pt2e(prepared)
    times["convert"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", default="200,400,800")
    parser.add_argument("--backend", default="x86")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-torchao", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    x = torch.randn(4, 64)
    qir_flow(chain(10), x, args.backend)  # imports and first-call costs out of the way
    print(f"{machine(args.threads)}; fastest of {args.repeat} run(s)")

    print(f"{'nodes':>6} {'flow':8} {'export':>7} {'prepare':>8} {'calib':>7} {'convert':>8} {'lower':>7} "
          f"{'total':>7} {'ms/node':>8}  (seconds; total excludes export)")
    per_node = []
    for blocks in map(int, args.blocks.split(",")):
        model = chain(blocks)
        nodes = 4 * blocks
        ours = fastest(lambda: qir_flow(model, x, args.backend), args.repeat)
        total = sum(v for k, v in ours.items() if k != "export")
        per_node.append(total / nodes)
        print(f"{nodes:6} {'qir':8} {ours['export']:7.2f} {ours['prepare']:8.2f} {ours['calibrate']:7.3f} "
              f"{ours['convert']:8.2f} {ours['lower']:7.2f} {total:7.2f} {1e3 * total / nodes:8.3f}")
        if not args.no_torchao:
            theirs = fastest(lambda: torchao_flow(model, x), args.repeat)
            if theirs is not None:
                peer = sum(v for k, v in theirs.items() if k != "export")
                print(f"{nodes:6} {'torchao':8} {theirs['export']:7.2f} {theirs['prepare']:8.2f} "
                      f"{theirs['calibrate']:7.3f} {theirs['convert']:8.2f} {'-':>7} {peer:7.2f} "
                      f"{1e3 * peer / nodes:8.3f}  qir takes {total / peer:.2f}x torchao's time "
                      f"(and lowers too; the goal: at most 0.10x)")
    print(f"after: {machine(args.threads)}")
    if len(per_node) > 1:
        print(f"per-node cost at the largest size / at the smallest: {per_node[-1] / per_node[0]:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
