"""The `x86` dialect: torch's quantized CPU kernels under the x86 engine (fbgemm and oneDNN),
one op per kernel (`x86.conv2d_relu`, `x86.linear`, ...; see `qir.lowering.quantized_kernels.ops`),
its kernels for dynamic quantization (`x86.dynamic_linear`, ...; see `qir.lowering.dynamic_kernels`) and for
weight-only quantization (`x86.weight_only_linear`, ...; see `weight_only_ops`)."""

from xdsl.ir import Dialect

from qir.lowering.dynamic_kernels.ops import declare_ops
from qir.lowering.quantized_kernels.ops import declare_dialect
from qir.lowering.x86.weight_only_ops import WEIGHT_ONLY_OPS, WEIGHT_ONLY_TYPES

_KERNELS = declare_dialect("x86")
X86 = Dialect("x86", [*_KERNELS.operations, *declare_ops("x86"), *WEIGHT_ONLY_OPS],
              [*_KERNELS.attributes, *WEIGHT_ONLY_TYPES])
