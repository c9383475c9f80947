"""The `x86` dialect: torch's quantized CPU kernels under the x86 engine (fbgemm and oneDNN),
one op per kernel (`x86.conv2d_relu`, `x86.linear`, ...); see `qir.lowering.quantized_kernels.ops`."""

from qir.lowering.quantized_kernels.ops import declare_dialect

X86 = declare_dialect("x86")
