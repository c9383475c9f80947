// RUN: qir-opt %s -p convert -o %t.mlir
// RUN: qir-opt %t.mlir | filecheck %s
// RUN: qir-opt %t.mlir -o %t.copy.mlir && qir-opt %t.copy.mlir | filecheck %s
// RUN: qir-opt < %t.mlir --weights %t.safetensors | filecheck %s
// RUN: not qir-opt < %t.mlir 2>&1 | filecheck %s --check-prefix=NOWEIGHTS
// RUN: qir-opt %s -p convert 2>&1 >%t.stdout.mlir | filecheck %s --check-prefix=WARN

// Weights travel beside the text: convert puts the int8 weight in the store
// under a new name; -o writes it to out.safetensors beside out.mlir, where the
// next qir-opt finds it (from stdin, --weights names the file). Printed to
// stdout, the new weights cannot follow: a warning says so.

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
    %w = aten.param constant "w" = dense<[[1.0, -2.0, 0.5], [0.25, 0.5, -1.0]]> : tensor<2x3xf32>
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>, stats = {min = -1.0 : f64, max = 3.0 : f64}} : tensor<2x3xf32>
    %wo = obs.observe %w {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>, stats = {min = array<f64: -2.0, -1.0>, max = array<f64: 1.0, 0.5>}} : tensor<2x3xf32>
    %l = aten.op "linear.default"(%xo, %wo) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x2xf32>
    func.return %l : tensor<2x2xf32>
  }
}

// CHECK:     builtin.module attributes {qir.stage = "quantized"}
// CHECK:     aten.param constant "w_q" : tensor<2x3x!quant.uniform<i8:f32:0,

// NOWEIGHTS: <stdin>:{{[0-9]+}}:{{[0-9]+}}: error: aten.param 'w_q': no such tensor in the weights

// WARN:      qir-opt: warning: 1 new weights (e.g. 'w_q') are not printed; write with -o to keep them beside the output
