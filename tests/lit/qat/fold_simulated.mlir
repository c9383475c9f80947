// RUN: qir-opt %s -p 'set-training{mode=eval},fold-bn' | filecheck %s

// convert's first passes on a QAT program: the mode becomes eval, and the form simulate-bn left folds
// into the weights PTQ's fold-bn gives: w' = 0.5 * 2 / sqrt(1 + 1e-5), b' = (0.25 - 0) * 2 / sqrt(1 + 1e-5) + 0.5.

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<2x1x4x4xf32>) -> tensor<2x2x2x2xf32> {
    %w = aten.param parameter "conv.weight" = dense<5.000000e-01> : tensor<2x1x3x3xf32>
    %b = aten.param parameter "conv.bias" = dense<2.500000e-01> : tensor<2xf32>
    %g = aten.param parameter "bn.weight" = dense<2.000000e+00> : tensor<2xf32>
    %beta = aten.param parameter "bn.bias" = dense<5.000000e-01> : tensor<2xf32>
    %m = aten.param buffer "bn.running_mean" = dense<0.000000e+00> : tensor<2xf32>
    %v = aten.param buffer "bn.running_var" = dense<1.000000e+00> : tensor<2xf32>
    %x_obs = obs.fake_quant %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, moving_minmax, group 0>} : tensor<2x1x4x4xf32>
    %0 = aten.op "add.Tensor"(%v, 1.0e-05) : (tensor<2xf32>) -> tensor<2xf32>
    %1 = aten.op "sqrt.default"(%0) : (tensor<2xf32>) -> tensor<2xf32>
    %2 = aten.op "div.Tensor"(%g, %1) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
    %3 = aten.op "reshape.default"(%2, [-1, 1, 1, 1]) : (tensor<2xf32>) -> tensor<2x1x1x1xf32>
    %w_bn_scaled = aten.op "mul.Tensor"(%w, %3) : (tensor<2x1x3x3xf32>, tensor<2x1x1x1xf32>) -> tensor<2x1x3x3xf32>
    %w_obs = obs.fake_quant %w_bn_scaled {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 1>} : tensor<2x1x3x3xf32>
    %c = aten.op "conv2d.default"(%x_obs, %w_obs, none) : (tensor<2x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<2x2x2x2xf32>
    %4 = aten.op "reshape.default"(%2, [1, -1, 1, 1]) : (tensor<2xf32>) -> tensor<1x2x1x1xf32>
    %5 = aten.op "div.Tensor"(%c, %4) : (tensor<2x2x2x2xf32>, tensor<1x2x1x1xf32>) -> tensor<2x2x2x2xf32>
    %6 = aten.op "reshape.default"(%b, [1, -1, 1, 1]) : (tensor<2xf32>) -> tensor<1x2x1x1xf32>
    %c_unscaled = aten.op "add.Tensor"(%5, %6) : (tensor<2x2x2x2xf32>, tensor<1x2x1x1xf32>) -> tensor<2x2x2x2xf32>
    %y = aten.op "batch_norm.default"(%c_unscaled, %g, %beta, %m, %v, #aten.training<batch_norm>, 0.1, 1.0e-05, false) : (tensor<2x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x2x2x2xf32>
    %r = aten.op "relu.default"(%y) : (tensor<2x2x2x2xf32>) -> tensor<2x2x2x2xf32>
    %d = aten.op "dropout.default"(%r, 0.1, #aten.training<module>) : (tensor<2x2x2x2xf32>) -> tensor<2x2x2x2xf32>
    func.return %d : tensor<2x2x2x2xf32>
  }
}


// CHECK:      %[[X:.*]] = obs.fake_quant %x {id = "obs0"
// CHECK-NEXT: %[[W:.*]] = aten.param parameter "conv.weight_folded" : tensor<2x1x3x3xf32>
// CHECK-NEXT: %[[B:.*]] = aten.param parameter "conv.bias_folded" : tensor<2xf32>
// The weight's fake quantization observes the folded weight now, as a PTQ weight observer would:
// CHECK-NEXT: %[[WQ:.*]] = obs.fake_quant %[[W]] {id = "obs1", spec = {{.*}}, stats = {min = array<f64: 0.99999499320983887, 0.99999499320983887>, max = array<f64: 0.99999499320983887, 0.99999499320983887>}}
// CHECK-NEXT: %[[C:.*]] = aten.op "conv2d.default"(%[[X]], %[[WQ]], %[[B]])
// CHECK-NEXT: %[[R:.*]] = aten.op "relu.default"(%[[C]])
// CHECK-NEXT: aten.op "dropout.default"(%[[R]], 0.1, false)
// CHECK-NOT:  batch_norm
// CHECK-NOT:  #aten.training
