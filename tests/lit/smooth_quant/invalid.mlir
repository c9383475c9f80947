// RUN: not qir-opt %s -p convert 2>&1 | filecheck %s --check-prefix=CONVERT
// RUN: not qir-opt %s -p smooth-quant 2>&1 | filecheck %s --check-prefix=USER
// RUN: not qir-opt %S/Inputs/uncalibrated.mlir -p smooth-quant 2>&1 | filecheck %s --check-prefix=NODATA
// RUN: not qir-opt %S/Inputs/bad_spec.mlir 2>&1 | filecheck %s --check-prefix=SPEC

// convert refuses a smoothed observer; smooth-quant refuses one that an op other than a
// linear reads (the relu here: it would read the divided value).

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<3x2xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>) {
    %w = aten.param constant "w" = dense<[[1.0, -1.0], [0.5, 1.0]]> : tensor<2x2xf32>
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, smooth 0.5, group 0>, stats = {min = array<f64: -1.0, -32.0>, max = array<f64: 1.0, 64.0>}} : tensor<3x2xf32>
    %l = aten.op "linear.default"(%xo, %w) : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
    %r = aten.op "relu.default"(%xo) : (tensor<3x2xf32>) -> tensor<3x2xf32>
    func.return %l, %r : tensor<3x2xf32>, tensor<3x2xf32>
  }
}

// CONVERT: invalid.mlir:12:{{[0-9]+}}: error: {{.*}}observer obs0 is smoothed: run smooth-quant before convert
// USER:    invalid.mlir:14:{{[0-9]+}}: error: {{.*}}observer obs0 is smoothed, so only linears may read it (as their input)
// NODATA:  uncalibrated.mlir:5:{{[0-9]+}}: error: {{.*}}observer obs0 saw no data: calibrate the program before smooth-quant
// SPEC:    bad_spec.mlir:4:{{[0-9]+}}: error: {{.*}}smooth takes a migration strength in [0, 1], got 1.5
