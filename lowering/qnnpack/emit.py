"""How `qnnpack` ops become torch calls: the quantized kernels' emission, for this dialect, with
every kernel run under the QNNPACK engine (`torch.backends.quantized.engine` is switched for
each call and restored after it: several kernels take their QNNPACK path only while it is set).

One kernel differs from the shared emission: `clamp` (a hardtanh, a ReLU6). QNNPACK's clamp
computes a channels-last input in memory order but writes a contiguous result (torch 2.13:
values scrambled across channels, up to the whole range off; convs leave channels-last
tensors, so every conv + ReLU6 met it). It is given the contiguous tensor a dense layout is in
memory, through a permutation, and the result is seen back through the inverse one: no copy.
"""

from __future__ import annotations

import torch

from qir.emitter import Emitter
from qir.lowering.qnnpack.dialect import QNNPACK
from qir.lowering.quantized_kernels import ops as k
from qir.lowering.quantized_kernels.emit import emission_of, on_engine

EMISSION = emission_of(QNNPACK, run_engine="qnnpack")

_CLAMP = torch.ops.aten.clamp.default
_MEMORY_ORDERS = {4: (torch.channels_last, (0, 2, 3, 1), (0, 3, 1, 2)),
                  5: (torch.channels_last_3d, (0, 2, 3, 4, 1), (0, 4, 1, 2, 3))}


def clamp_qnnpack(qx: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """`clamp(qx, low, high)` of a quantized tensor on the QNNPACK engine, its kernel only ever
    seeing a contiguous tensor: a channels-last one is clamped as the NHWC tensor it is in
    memory (a permuted view) and permuted back, so the result keeps its layout; another layout
    is made contiguous."""
    if qx.is_contiguous():
        return on_engine("qnnpack", _CLAMP, qx, low, high)
    order = _MEMORY_ORDERS.get(qx.dim())
    if order is not None and qx.is_contiguous(memory_format=order[0]):
        return on_engine("qnnpack", _CLAMP, qx.permute(order[1]), low, high).permute(order[2])
    return on_engine("qnnpack", _CLAMP, qx.contiguous(), low, high)


@EMISSION.rule("qnnpack.clamp", replace=True)
def _emit_clamp(em: Emitter, op: k.Clamp) -> None:
    node = em.call(clamp_qnnpack, (em.node(op.input), op.min.value.data, op.max.value.data),
                   name=op.output.name_hint)
    em.bind(op, node)
