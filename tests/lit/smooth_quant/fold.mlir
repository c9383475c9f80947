// RUN: qir-opt %s -p fold-smoothing | filecheck %s

// A pre-norm block: the LayerNorm's and the written-out RMSNorm's outputs are read by the
// divisions alone, which fold into their weights and bias (w * inv, b * inv: two new
// parameters each). The third norm's output is also returned, so its division stays.

builtin.module attributes {qir.stage = "quantized"} {
  func.func @forward(%x: tensor<3x2xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>) {
    %w = aten.param constant "ln.weight" = dense<[1.0, 2.0]> : tensor<2xf32>
    %b = aten.param constant "ln.bias" = dense<[0.5, -0.5]> : tensor<2xf32>
    %g = aten.param constant "rms.weight" = dense<[3.0, 4.0]> : tensor<2xf32>
    %inv = aten.param constant "ln.smoothing" = dense<[1.0, 0.125]> : tensor<2xf32>
    %n = aten.op "layer_norm.default"(%x, [2], %w, %b, 1.0e-05, false) : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    %s = aten.op "mul.Tensor"(%n, %inv) {smoothing} : (tensor<3x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    %r = aten.op "mul.Tensor"(%g, %x) : (tensor<2xf32>, tensor<3x2xf32>) -> tensor<3x2xf32>
    %t = aten.op "mul.Tensor"(%r, %inv) {smoothing} : (tensor<3x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    %m = aten.op "layer_norm.default"(%x, [2], %w, %b, 1.0e-05, false) : (tensor<3x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    %u = aten.op "mul.Tensor"(%m, %inv) {smoothing} : (tensor<3x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    func.return %s, %t, %u, %m : tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>, tensor<3x2xf32>
  }
}

// CHECK:      %[[W:.*]] = aten.param constant "ln.weight_smoothed" : tensor<2xf32>
// CHECK-NEXT: %[[B:.*]] = aten.param constant "ln.bias_smoothed" : tensor<2xf32>
// CHECK-NEXT: %[[N:.*]] = aten.op "layer_norm.default"(%x, [2], %[[W]], %[[B]], 1.0e-05, false)
// CHECK-NEXT: %[[G:.*]] = aten.param constant "rms.weight_smoothed" : tensor<2xf32>
// CHECK-NEXT: %[[R:.*]] = aten.op "mul.Tensor"(%[[G]], %x)
// CHECK-NEXT: %[[M:.*]] = aten.op "layer_norm.default"(%x, [2], %w, %b, 1.0e-05, false)
// CHECK-NEXT: %[[U:.*]] = aten.op "mul.Tensor"(%[[M]], %inv) {smoothing}
// CHECK-NEXT: func.return %[[N]], %[[R]], %[[U]], %[[M]]
