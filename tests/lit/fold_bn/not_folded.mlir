// RUN: qir-opt %s -p fold-bn | filecheck %s

// BatchNorms that must stay: folding any of them would change what the
// program computes, or would need facts the IR does not show.

// A linear on (N, L, C): BatchNorm1d normalizes axis 1 (L), not the linear's
// features, even though both have 4 entries here (pytorch/ao#4116).
// CHECK-LABEL: func.func @linear_3d(
// CHECK:         aten.op "linear.default"(%x, %w, %b)
// CHECK-NEXT:    aten.op "batch_norm.default"
func.func @linear_3d(%x: tensor<2x4x8xf32>) -> tensor<2x4x4xf32> {
  %w = aten.param parameter "fc.weight" = dense<0.5> : tensor<4x8xf32>
  %b = aten.param parameter "fc.bias" = dense<0.25> : tensor<4xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<4xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<4xf32>
  %l = aten.op "linear.default"(%x, %w, %b) : (tensor<2x4x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<2x4x4xf32>
  %y = aten.op "batch_norm.default"(%l, none, none, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<2x4x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4x4xf32>
  func.return %y : tensor<2x4x4xf32>
}

// The same after a permute to (N, C, L): a fold would be right, but the
// BatchNorm's producer is the permute, and fold-bn does not look through it.
// CHECK-LABEL: func.func @linear_3d_permute(
// CHECK:         aten.op "linear.default"(%x, %w, %b)
// CHECK-NEXT:    aten.op "permute.default"
// CHECK-NEXT:    aten.op "batch_norm.default"
func.func @linear_3d_permute(%x: tensor<2x5x8xf32>) -> tensor<2x4x5xf32> {
  %w = aten.param parameter "fc.weight" = dense<0.5> : tensor<4x8xf32>
  %b = aten.param parameter "fc.bias" = dense<0.25> : tensor<4xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<4xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<4xf32>
  %l = aten.op "linear.default"(%x, %w, %b) : (tensor<2x5x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<2x5x4xf32>
  %p = aten.op "permute.default"(%l, [0, 2, 1]) : (tensor<2x5x4xf32>) -> tensor<2x4x5xf32>
  %y = aten.op "batch_norm.default"(%p, none, none, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<2x4x5xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4x5xf32>
  func.return %y : tensor<2x4x5xf32>
}

// An unbatched conv1d: its (C, L) output is a batch of L-vectors to BatchNorm1d.
// CHECK-LABEL: func.func @unbatched_conv1d(
// CHECK:         aten.op "conv1d.default"(%x, %w)
// CHECK-NEXT:    aten.op "batch_norm.default"
func.func @unbatched_conv1d(%x: tensor<3x6xf32>) -> tensor<4x4xf32> {
  %w = aten.param parameter "conv.weight" = dense<0.5> : tensor<4x3x3xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<4xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<4xf32>
  %c = aten.op "conv1d.default"(%x, %w) : (tensor<3x6xf32>, tensor<4x3x3xf32>) -> tensor<4x4xf32>
  %y = aten.op "batch_norm.default"(%c, none, none, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<4x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4x4xf32>
  func.return %y : tensor<4x4xf32>
}

// Training mode: the statistics come from the batch.
// CHECK-LABEL: func.func @training(
// CHECK:         aten.op "conv2d.default"(%x, %w)
// CHECK-NEXT:    aten.op "batch_norm.default"(%{{.*}}, none, none, %m, %v, true,
func.func @training(%x: tensor<2x1x4x4xf32>) -> tensor<2x2x2x2xf32> {
  %w = aten.param parameter "conv.weight" = dense<0.5> : tensor<2x1x3x3xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<2xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<2xf32>
  %c = aten.op "conv2d.default"(%x, %w) : (tensor<2x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<2x2x2x2xf32>
  %y = aten.op "batch_norm.default"(%c, none, none, %m, %v, true, 0.1, 1.0e-05, false) : (tensor<2x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x2x2x2xf32>
  func.return %y : tensor<2x2x2x2xf32>
}

// The conv's output has another user besides the BatchNorm.
// CHECK-LABEL: func.func @two_uses(
// CHECK:         %[[C:.*]] = aten.op "conv2d.default"(%x, %w)
// CHECK-NEXT:    %[[Y:.*]] = aten.op "batch_norm.default"(%[[C]],
// CHECK-NEXT:    func.return %[[Y]], %[[C]]
func.func @two_uses(%x: tensor<1x1x4x4xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) {
  %w = aten.param parameter "conv.weight" = dense<0.5> : tensor<2x1x3x3xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<2xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<2xf32>
  %c = aten.op "conv2d.default"(%x, %w) : (tensor<1x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<1x2x2x2xf32>
  %y = aten.op "batch_norm.default"(%c, none, none, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %y, %c : tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>
}

// A weight that is an input, not a constant.
// CHECK-LABEL: func.func @weight_argument(
// CHECK:         aten.op "conv2d.default"(%x, %w)
// CHECK-NEXT:    aten.op "batch_norm.default"
func.func @weight_argument(%x: tensor<1x1x4x4xf32>, %w: tensor<2x1x3x3xf32>) -> tensor<1x2x2x2xf32> {
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<2xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<2xf32>
  %c = aten.op "conv2d.default"(%x, %w) : (tensor<1x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<1x2x2x2xf32>
  %y = aten.op "batch_norm.default"(%c, none, none, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %y : tensor<1x2x2x2xf32>
}

// Statistics that the program writes back (`aten.param_update`) are not constants.
// CHECK-LABEL: func.func @written_stats(
// CHECK:         aten.op "conv2d.default"(%x, %w)
// CHECK-NEXT:    aten.op "batch_norm.default"
func.func @written_stats(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %w = aten.param parameter "conv.weight" = dense<0.5> : tensor<2x1x3x3xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<2xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<2xf32>
  %c = aten.op "conv2d.default"(%x, %w) : (tensor<1x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<1x2x2x2xf32>
  %y = aten.op "batch_norm.default"(%c, none, none, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  %n = aten.op "add.Tensor"(%m, 1.0) : (tensor<2xf32>) -> tensor<2xf32>
  aten.param_update "bn.running_mean", %n : tensor<2xf32>
  func.return %y : tensor<1x2x2x2xf32>
}

// The saved mean of the three-result form is used.
// CHECK-LABEL: func.func @saved_mean_used(
// CHECK:         aten.op "conv2d.default"(%x, %w)
// CHECK-NEXT:    aten.op "_native_batch_norm_legit_no_training.default"
func.func @saved_mean_used(%x: tensor<1x1x4x4xf32>) -> (tensor<1x2x2x2xf32>, tensor<0xf32>) {
  %w = aten.param parameter "conv.weight" = dense<0.5> : tensor<2x1x3x3xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<2xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<2xf32>
  %c = aten.op "conv2d.default"(%x, %w) : (tensor<1x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<1x2x2x2xf32>
  %y, %sm, %sr = aten.op "_native_batch_norm_legit_no_training.default"(%c, none, none, %m, %v, 0.1, 1.0e-05) : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>) -> (tensor<1x2x2x2xf32>, tensor<0xf32>, tensor<0xf32>)
  func.return %y, %sm : tensor<1x2x2x2xf32>, tensor<0xf32>
}

// CHECK-NOT: _folded

// A running statistic written in place through a view of it (`bn.running_var.view(2).add_(1)`):
// it is not a constant, so the conv's weight cannot absorb it.
// CHECK-LABEL: func.func @statistic_written_through_a_view(
// CHECK:         aten.op "conv2d.default"(%x, %w)
// CHECK:         aten.op "batch_norm.default"
func.func @statistic_written_through_a_view(%x: tensor<2x1x4x4xf32>) -> tensor<2x2x2x2xf32> {
  %w = aten.param parameter "conv.weight" = dense<0.5> : tensor<2x1x3x3xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<2xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<2xf32>
  %view = aten.op "view.default"(%v, [2]) : (tensor<2xf32>) -> tensor<2xf32>
  %d = aten.op "add_.Scalar"(%view, 1.0) : (tensor<2xf32>) -> tensor<2xf32>
  %c = aten.op "conv2d.default"(%x, %w) : (tensor<2x1x4x4xf32>, tensor<2x1x3x3xf32>) -> tensor<2x2x2x2xf32>
  %y = aten.op "batch_norm.default"(%c, none, none, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<2x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x2x2x2xf32>
  func.return %y : tensor<2x2x2x2xf32>
}
