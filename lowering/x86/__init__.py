"""The `x86` backend: torch's quantized CPU kernels under the x86 engine (fbgemm and oneDNN).

Quantized activations are `quint8` tensors from the first kernel to the last:
convs and linears run with prepacked weights and their relu fused, a conv
feeding a residual add runs as one oneDNN conv+add(+relu) kernel, and adds,
muls, cats, pools and elementwise functions stay quantized between them. A conv
or linear whose result is read in float (the X86 recipe's linears, a conv before
a silu) runs as oneDNN's float-output kernel, the one torch's own x86 inductor
lowering calls, on its input's quantized storage, with the relu/gelu/silu after
it fused. What its table refuses (int8 activations, per-channel transposed
convs, ...) stays in the Q/DQ form and runs in float.
"""

from __future__ import annotations

from pathlib import Path

from qir.lowering.backend import Backend
from qir.lowering.capabilities import OpCapability, table
from qir.lowering.quantized_kernels.functions import FUNCTIONS
from qir.lowering.x86.engines import FUNCTIONS as ENGINE_FUNCTIONS
from qir.lowering.x86.weight_only_ops import FUNCTIONS as WEIGHT_ONLY_FUNCTIONS
from qir.lowering.x86.weight_only_ops import kernel_takes as weight_only_kernel_takes
from qir.lowering.quantized_kernels.patterns import lowering_patterns
from qir.lowering.x86.dialect import X86
from qir.lowering.x86.emit import EMISSION


def _symmetric_weight(op) -> bool:
    """fbgemm and oneDNN take weights with zero points of 0 only."""
    from qir.dialects.ref import quantized

    qtype = quantized(op.weight)
    return not any(getattr(qtype, "zero_points", (getattr(qtype, "zero_point", 0),)))


def _fbgemm_transposed(op) -> bool:
    """Whether fbgemm (the engine the rules pack transposed convs for) computes this one right.
    Its direct path for 2-D transposed convs, taken for a kernel height of 2 and width up to 6, no
    padding, strides of 1 or 2, no dilation or groups and channel counts multiples of 8, gives
    wrong results that change from run to run in torch 2.13 (a UNet's 2x2 stride-2
    up-convolution of 16+ channels: SQNR below 0 dB); such convs stay float."""
    if not _symmetric_weight(op):
        return False
    if op.spatial_rank != 2:
        return True
    in_channels, out_channels, kernel_h, kernel_w = op.weight.type.get_shape()
    direct = (op.groups.value.data == 1 and in_channels % 8 == 0 and out_channels % 8 == 0
              and kernel_h == 2 and kernel_w <= 6 and all(s in (1, 2) for s in op.stride.get_values())
              and all(p == 0 for p in op.padding.get_values()) and all(d == 1 for d in op.dilation.get_values()))
    return not direct


def _dynamic_kernel_takes(op) -> bool:
    """x86's dynamic kernels (`x86.dynamic_linear`) take symmetric weights, and a uint8 input with
    one scale (oneDNN's); an int8 input runs per token or per tensor as uint8 `q + 128`."""
    from qir.dialects.ref import quantized

    return _symmetric_weight(op) and (quantized(op.input).is_signed or not op.per_token)


CAPABILITIES = table(
    OpCapability("ref.conv", posts=(None, "relu", "hardtanh"), spatial=(1, 2, 3), float_output=True,
                 check=_symmetric_weight),
    # fbgemm and oneDNN have no per-channel transposed convolution.
    OpCapability("ref.conv", posts=(None, "relu", "hardtanh"), spatial=(1, 2, 3), transposed=True,
                 weight_schemes=("per_tensor",), check=_fbgemm_transposed),
    OpCapability("ref.conv_add", posts=(None, "relu"), spatial=(2,), check=_symmetric_weight),
    OpCapability("ref.linear", posts=(None, "relu", "hardtanh"), float_output=True, check=_symmetric_weight),
    OpCapability("ref.dynamic_linear", activations=("u8", "i8"), float_output=True, check=_dynamic_kernel_takes),
    # weight-only: float activations; int8/int4 weights on inductor's generated kernels, float16 on fbgemm's
    *(OpCapability(name, activations=(), weights=("i8", "u8", "i4", "u4"), float_output=True, check=weight_only_kernel_takes)
      for name in ("ref.weight_only_linear", "ref.weight_only_embedding", "ref.weight_only_embedding_bag")),
    OpCapability("ref.matmul"),
    OpCapability("ref.add", posts=(None, "relu")),
    OpCapability("ref.mul", posts=(None, "relu")),
    OpCapability("ref.cat"),
    OpCapability("ref.requantize"),
    OpCapability("ref.avg_pool", spatial=(1, 2, 3)),
    OpCapability("ref.adaptive_avg_pool", spatial=(1, 2)),
    OpCapability("ref.lookup"),
    int16_pairs=True,
)

BACKEND = Backend(
    name="x86",
    description="torch.ops.quantized kernels on the x86 engine (fbgemm / oneDNN)",
    capabilities=CAPABILITIES,
    dialects=(X86,),
    rules=(Path(__file__).with_name("x86.rules"),),
    functions={**FUNCTIONS, **ENGINE_FUNCTIONS, **WEIGHT_ONLY_FUNCTIONS},
    patterns=lowering_patterns(X86),
    emission=EMISSION,
    # `x86` and `x86-qat` name qir's own X86 recipe (`qir.quantizer.X86Quantizer`, torchao's
    # X86InductorQuantizer); the quantizer this table derives is `BACKEND.quantizer()`.
    quantizers={},
)
