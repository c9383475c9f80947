// RUN: qir-opt %s | qir-opt | filecheck %s

// xDSL prints a float it cannot write losslessly in `%e` or `%.9g` form as its
// bit pattern in hexadecimal (NaN, +-inf, and finite values such as 123456789.0),
// and, in xDSL 0.74, read such a literal inside dense<[...]> as an integer to
// convert (0x7F800000 -> 2.13909504e+09) and refused it in array<f64: ...>.
// qir's parser reads it as MLIR does, as the bit pattern, so inline constants and
// observer statistics survive print -> parse exactly.

builtin.module {
  %t = aten.param constant "t" = dense<[1.0, 0x7F800000, 0xFF800000, 0x7FC00000, 123456792.0]> : tensor<5xf32>
  %x = aten.param constant "x" = dense<2143289344.0> : tensor<2xf64>
  %o = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>, stats = {min = 2143289344.0 : f64, max = 2143289344.0 : f64}} : tensor<2xf64>
  %h = obs.observe %x {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>, stats = {min = array<f64: 1234567.0, 0.5>, max = array<f64: 123456789.0, 0x7FF0000000000000>}} : tensor<2xf64>
}

// CHECK: dense<[1.000000e+00, 0x7f800000, 0xff800000, 0x7fc00000, 0x4CEB79A3]> : tensor<5xf32>
// CHECK: dense<0x41DFF00000000000> : tensor<2xf64>
// CHECK: stats = {min = 0x41DFF00000000000 : f64, max = 0x41DFF00000000000 : f64}
// CHECK: stats = {min = array<f64: 0x4132D68700000000, 5.000000e-01>, max = array<f64: 0x419D6F3454000000, 0x7ff0000000000000>}
