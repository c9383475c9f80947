"""How fast the IR layer is: import, print, parse and emit, per node, at three sizes.

    python bench/ir_speed.py

The graphs are chains of Linear+ReLU blocks (two ATen ops and two parameters
per block, so 4 exported nodes per block), Linear(64, 64) as in bench/flow_speed.py.
The issue's bar: import + emit of 3200 nodes within 0.5 s, growing linearly. For
scale, the same graph's `ExportedProgram.module()` (torch's own unlift to an
fx.GraphModule) is timed in the same run. Each figure is the fastest of 3 runs.
"""

from __future__ import annotations

import statistics
import time

import torch

import qir
from timing import machine


def _chain(blocks: int) -> torch.nn.Module:
    layers = [torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU()) for _ in range(blocks)]
    return torch.nn.Sequential(*layers).eval()


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    torch.set_num_threads(1)
    x = torch.randn(2, 64)
    print(machine(1))
    print(f"{'nodes':>6} {'import':>9} {'print':>9} {'parse':>9} {'emit':>9} {'imp+emit':>9} "
          f"{'ep.module()':>11}   (ms per node; imp+emit and ep.module() in ms total)")
    per_node = []
    for blocks in (50, 200, 800):
        ep = torch.export.export(_chain(blocks), (x,))
        nodes = len(ep.graph.nodes)
        program = qir.import_program(ep)
        text = str(program)
        t_import = _best(lambda: qir.import_program(ep))
        t_print = _best(lambda: str(program))
        t_parse = _best(lambda: qir.parse(text, program.params))
        t_emit = _best(lambda: program.to_fx())
        t_torch = _best(lambda: ep.module())
        per_node.append((t_import + t_emit) / nodes)
        ms = 1000 / nodes
        print(f"{nodes:>6} {t_import * ms:>9.3f} {t_print * ms:>9.3f} {t_parse * ms:>9.3f} "
              f"{t_emit * ms:>9.3f} {(t_import + t_emit) * 1000:>9.1f} {t_torch * 1000:>11.1f}")
    print(f"import + emit of {nodes} nodes: {(t_import + t_emit) * 1000:.0f} ms (the goal: at most 500 ms)")
    growth = per_node[-1] / statistics.mean(per_node[:-1])
    print(f"per-node cost at the largest size / mean of the smaller sizes: {growth:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
