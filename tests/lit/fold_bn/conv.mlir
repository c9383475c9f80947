// RUN: qir-opt %s -p fold-bn | filecheck %s

// The BatchNorm goes; the conv gets new weights and a bias (it had none):
// scale = 2 / sqrt(3 + 1) = 1, so the weight is unchanged and bias = (0 - 1) * 1 + 0.5 = -0.5.

builtin.module {
  func.func @forward(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x2x2xf32> {
    %w = aten.param constant "conv.weight" = dense<1.0> : tensor<1x1x3x3xf32>
    %g = aten.param constant "bn.weight" = dense<2.0> : tensor<1xf32>
    %b = aten.param constant "bn.bias" = dense<0.5> : tensor<1xf32>
    %m = aten.param constant "bn.running_mean" = dense<1.0> : tensor<1xf32>
    %v = aten.param constant "bn.running_var" = dense<3.0> : tensor<1xf32>
    %c = aten.op "conv2d.default"(%x, %w) : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>) -> tensor<1x1x2x2xf32>
    %y = aten.op "batch_norm.default"(%c, %g, %b, %m, %v, false, 0.1, 1.0, false) : (tensor<1x1x2x2xf32>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x1x2x2xf32>
    func.return %y : tensor<1x1x2x2xf32>
  }
}

// CHECK:      %[[W:.*]] = aten.param parameter "conv.weight_folded" : tensor<1x1x3x3xf32>
// CHECK-NEXT: %[[B:.*]] = aten.param parameter "conv.bias_folded" : tensor<1xf32>
// CHECK-NEXT: %[[C:.*]] = aten.op "conv2d.default"(%x, %[[W]], %[[B]]) : (tensor<1x1x4x4xf32>, tensor<1x1x3x3xf32>, tensor<1xf32>) -> tensor<1x1x2x2xf32>
// CHECK-NEXT: func.return %[[C]]
// CHECK-NOT:  batch_norm
