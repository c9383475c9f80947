"""The `x86` dialect: torch's quantized CPU kernels under the x86 engine (fbgemm and oneDNN),
one op per kernel (`x86.conv2d_relu`, `x86.linear`, ...; see `qir.lowering.quantized_kernels.ops`),
and its kernels for dynamic quantization (`x86.dynamic_linear`, ...; see `dynamic_ops`)."""

from xdsl.ir import Dialect

from qir.lowering.quantized_kernels.ops import declare_dialect
from qir.lowering.x86.dynamic_ops import DYNAMIC_OPS

_KERNELS = declare_dialect("x86")
X86 = Dialect("x86", [*_KERNELS.operations, *DYNAMIC_OPS], list(_KERNELS.attributes))
