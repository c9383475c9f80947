"""The `onednn` backend: torch's oneDNN int8 kernels on plain uint8 / int8 tensors.

`torch.ops.onednn.qconv{1,2,3}d_pointwise`, `qconv2d_pointwise.binary` and
`qlinear_pointwise` (+ `.binary`) take integer tensors with their scales and zero points as
arguments, so this backend never makes a torch quantized tensor (`quint8`, whose creation
torch 2.13 deprecates): activations are the integer storage of the `reference` stage from
the first quantize to the last dequantize. Weights are prepacked once, when the module is
built; convs and linears run with their post ops fused (relu, hardtanh, hardswish, swish,
gelu, tanh; a gelu or silu between two quantized ops is found through its dequantize and
quantize), a conv feeding a residual add as one conv + sum kernel, a linear read in float
leaves the kernel in float32, and one added to a float residual takes the add as its
binary post op. What oneDNN has no kernel for (add, mul, matmul, cat, pools, lookups,
requantize) runs as ATen arithmetic on the storage (`storage_kernels`), within one
quantization step of the reference, exactly where it only selects or sums integers.

Dynamic quantization runs on the kernels x86 runs (`qir.lowering.dynamic_kernels`, declared in
this dialect: `onednn.choose_qparams`, `dynamic_quantize`, `dynamic_linear`, oneDNN's int8
linear given the run-time parameters); weight-only programs stay in the Q/DQ form (oneDNN has no
weight-only kernel torch exposes).

What the table refuses stays in the Q/DQ form and runs in float: transposed convolutions
(torch has no oneDNN quantized transposed conv op), convs of int8 activations (oneDNN's
convs take uint8 only), a conv + sum into an accumulator of another storage than the
result's (oneDNN sums in place), 16-bit storage. A reference-stage program given to
`lower-onednn` directly may still hold such ref ops: they run as `qir.emit_ref`'s exact
integer emulation.
"""

from __future__ import annotations

from pathlib import Path

from qir.lowering.attention import FuseAttention
from qir.lowering.backend import Backend
from qir.lowering.capabilities import OpCapability, table
from qir.lowering.onednn.dialect import ONEDNN
from qir.lowering.onednn.emit import EMISSION
from qir.lowering.onednn.functions import FUNCTIONS
from qir.lowering.onednn.patterns import ViewAsReshape


def _symmetric_weight(op) -> bool:
    """oneDNN takes weights with zero points of 0 only."""
    from qir.dialects.ref import quantized

    qtype = quantized(op.weight)
    return all(z == 0 for z in getattr(qtype, "zero_points", (getattr(qtype, "zero_point", 0),)))


def _conv(op) -> bool:
    """oneDNN's quantized convs read uint8 activations (their results may be int8 or float)."""
    from qir.lowering.onednn.storage_ops import storage_name

    return storage_name(op.input) == "u8" and _symmetric_weight(op)


def _conv_sum(op) -> bool:
    """The sum is written into the addend's buffer: it must have the result's storage."""
    from qir.lowering.onednn.storage_ops import storage_name

    return _conv(op) and storage_name(op.addend) == storage_name(op.output)


def _dynamic_linear(op) -> bool:
    """A linear of an input quantized at run time runs on `qlinear_pointwise` as on x86
    (`qir.lowering.dynamic_kernels`): symmetric weights; a uint8 input with one scale, or an int8
    one (as uint8 `q + 128`) per token or per tensor."""
    from qir.dialects.ref import quantized

    return _symmetric_weight(op) and (quantized(op.input).is_signed or not op.per_token)


_KERNEL = ("u8", "i8")

CAPABILITIES = table(
    # relu and hardtanh of the ranks whose kernel does not fuse them become clamps after it.
    OpCapability("ref.conv", activations=_KERNEL, posts=(None, "relu", "hardtanh"), spatial=(1, 2, 3),
                 float_output=True, check=_conv),
    OpCapability("ref.conv_add", activations=_KERNEL, posts=(None, "relu", "hardtanh"), spatial=(2,), check=_conv_sum),
    OpCapability("ref.linear", activations=_KERNEL, posts=(None, "relu", "hardtanh"), float_output=True,
                 check=_symmetric_weight),
    OpCapability("ref.dynamic_linear", activations=_KERNEL, float_output=True, check=_dynamic_linear),
    OpCapability("ref.matmul", activations=_KERNEL, float_output=True),
    OpCapability("ref.add", activations=_KERNEL, posts=(None, "relu", "hardtanh")),
    OpCapability("ref.mul", activations=_KERNEL, posts=(None, "relu", "hardtanh")),
    OpCapability("ref.cat", activations=_KERNEL),
    OpCapability("ref.requantize", activations=_KERNEL),
    OpCapability("ref.avg_pool", activations=_KERNEL, spatial=(1, 2, 3)),
    OpCapability("ref.adaptive_avg_pool", activations=_KERNEL, spatial=(1, 2, 3)),
    OpCapability("ref.lookup", activations=_KERNEL),
    int16_pairs=True,
)


def _leftover(op) -> bool:
    """What may remain after lowering besides onednn ops: everything that is not a ref op (casts of
    weights, float ATen, parameters), and the ref ops the table refuses, which a reference-stage
    program handed to `lower-onednn` may hold (they run as the exact reference emission)."""
    return not op.name.startswith("ref.") or not CAPABILITIES.accepts(op)


BACKEND = Backend(
    name="onednn",
    description="torch.ops.onednn int8 kernels on plain uint8/int8 tensors",
    capabilities=CAPABILITIES,
    dialects=(ONEDNN,),
    rules=(Path(__file__).with_name("onednn.rules"),),
    functions=FUNCTIONS,
    patterns=(ViewAsReshape(), FuseAttention()),
    emission=EMISSION,
    leftovers=_leftover,
)
