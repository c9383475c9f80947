// RUN: qir-opt %s | qir-opt | filecheck %s
// XFAIL: *

// Known bug (xDSL 0.74): inside dense<[...]> a hexadecimal literal of a float
// element is read as an integer and converted (0x7F800000 -> 2.13909504e+09),
// while the printer writes non-finite elements exactly that way. So an inline
// +-inf or nan does not survive print -> parse (scalar `0x7FF0... : f64`
// attributes do: see roundtrip.mlir). Named parameters are unaffected: their
// tensors live in the .safetensors file. When this test passes, drop the XFAIL.

builtin.module {
  %t = aten.param constant "t" = dense<[1.0, 0x7F800000, 0xFF800000, 0x7FC00000]> : tensor<4xf32>
}

// CHECK: dense<[1.000000e+00, 0x7f800000, 0xff800000, 0x7fc00000]> : tensor<4xf32>
