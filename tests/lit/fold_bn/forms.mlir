// RUN: qir-opt %s -p fold-bn | filecheck %s
// RUN: qir-opt %s -p fold-bn --timing 2>&1 | filecheck %s --check-prefix=COUNT

// COUNT: fold-bn  (folded: 5)

// Every producer and BatchNorm form that folds. New weights go to the parameter
// store (printed by name); the inline ones they replace are erased.

// A grouped transposed convolution in its decomposed form, with the three-result
// BatchNorm of `run_decompositions` (results 1 and 2 unused).
// CHECK-LABEL: func.func @conv_transpose_groups(
// CHECK-NEXT:    %[[W:.*]] = aten.param parameter "deconv.weight_folded" : tensor<4x3x3x3xf32>
// CHECK-NEXT:    %[[B:.*]] = aten.param parameter "deconv.bias_folded" : tensor<6xf32>
// CHECK-NEXT:    %[[C:.*]] = aten.op "convolution.default"(%x, %[[W]], %[[B]], [1, 1], [0, 0], [1, 1], true, [0, 0], 2) {module = "deconv"} : (tensor<1x4x5x5xf32>, tensor<4x3x3x3xf32>, tensor<6xf32>) -> tensor<1x6x7x7xf32>
// CHECK-NEXT:    func.return %[[C]] : tensor<1x6x7x7xf32>
func.func @conv_transpose_groups(%x: tensor<1x4x5x5xf32>) -> tensor<1x6x7x7xf32> {
  %w = aten.param parameter "deconv.weight" = dense<0.5> : tensor<4x3x3x3xf32>
  %b = aten.param parameter "deconv.bias" = dense<0.25> : tensor<6xf32>
  %g = aten.param parameter "bn.weight" = dense<2.0> : tensor<6xf32>
  %beta = aten.param parameter "bn.bias" = dense<0.5> : tensor<6xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<6xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<6xf32>
  %c = aten.op "convolution.default"(%x, %w, %b, [1, 1], [0, 0], [1, 1], true, [0, 0], 2) {module = "deconv"} : (tensor<1x4x5x5xf32>, tensor<4x3x3x3xf32>, tensor<6xf32>) -> tensor<1x6x7x7xf32>
  %y, %saved_mean, %saved_rstd = aten.op "_native_batch_norm_legit_no_training.default"(%c, %g, %beta, %m, %v, 0.1, 1.0e-05) : (tensor<1x6x7x7xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>) -> (tensor<1x6x7x7xf32>, tensor<0xf32>, tensor<0xf32>)
  func.return %y : tensor<1x6x7x7xf32>
}

// A linear on (N, C) with its bias passed by keyword: the new bias takes its place.
// CHECK-LABEL: func.func @linear(
// CHECK-NEXT:    %[[W:.*]] = aten.param parameter "fc.weight_folded" : tensor<6x8xf32>
// CHECK-NEXT:    %[[B:.*]] = aten.param parameter "fc.bias_folded" : tensor<6xf32>
// CHECK-NEXT:    %[[L:.*]] = aten.op "linear.default"(%x, %[[W]], bias = %[[B]]) : (tensor<3x8xf32>, tensor<6x8xf32>, tensor<6xf32>) -> tensor<3x6xf32>
// CHECK-NEXT:    func.return %[[L]]
func.func @linear(%x: tensor<3x8xf32>) -> tensor<3x6xf32> {
  %w = aten.param parameter "fc.weight" = dense<0.5> : tensor<6x8xf32>
  %b = aten.param parameter "fc.bias" = dense<0.25> : tensor<6xf32>
  %g = aten.param parameter "bn1d.weight" = dense<2.0> : tensor<6xf32>
  %beta = aten.param parameter "bn1d.bias" = dense<0.5> : tensor<6xf32>
  %m = aten.param buffer "bn1d.running_mean" = dense<1.0> : tensor<6xf32>
  %v = aten.param buffer "bn1d.running_var" = dense<3.0> : tensor<6xf32>
  %l = aten.op "linear.default"(%x, %w, bias = %b) : (tensor<3x8xf32>, tensor<6x8xf32>, tensor<6xf32>) -> tensor<3x6xf32>
  %y = aten.op "batch_norm.default"(%l, %g, %beta, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<3x6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<3x6xf32>
  func.return %y : tensor<3x6xf32>
}

// `conv1d.padding` (padding="same", no bias) and `native_batch_norm` with
// training=false and no affine parameters (BatchNorm1d(affine=False)).
// CHECK-LABEL: func.func @conv1d_padding_no_affine(
// CHECK-NEXT:    %[[W:.*]] = aten.param parameter "conv1d.weight_folded" : tensor<4x2x3xf32>
// CHECK-NEXT:    %[[B:.*]] = aten.param parameter "conv1d.bias_folded" : tensor<4xf32>
// CHECK-NEXT:    %[[C:.*]] = aten.op "conv1d.padding"(%x, %[[W]], %[[B]], [1], "same") : (tensor<2x2x9xf32>, tensor<4x2x3xf32>, tensor<4xf32>) -> tensor<2x4x9xf32>
// CHECK-NEXT:    func.return %[[C]]
func.func @conv1d_padding_no_affine(%x: tensor<2x2x9xf32>) -> tensor<2x4x9xf32> {
  %w = aten.param parameter "conv1d.weight" = dense<0.5> : tensor<4x2x3xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<4xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<4xf32>
  %c = aten.op "conv1d.padding"(%x, %w, none, [1], "same") : (tensor<2x2x9xf32>, tensor<4x2x3xf32>) -> tensor<2x4x9xf32>
  %y, %sm, %sr = aten.op "native_batch_norm.default"(%c, none, none, %m, %v, false, 0.1, 1.0e-05) : (tensor<2x4x9xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<2x4x9xf32>, tensor<0xf32>, tensor<0xf32>)
  func.return %y : tensor<2x4x9xf32>
}

// One weight, two convolutions, two BatchNorms: each fold gets its own new
// weight; the shared one goes once neither uses it.
// CHECK-LABEL: func.func @shared_weight(
// CHECK-NOT:     "conv.weight"
// CHECK:         %[[W1:.*]] = aten.param parameter "conv.weight_folded" : tensor<2x2x1x1xf32>
// CHECK-NEXT:    %[[B1:.*]] = aten.param parameter "conv.bias_folded" : tensor<2xf32>
// CHECK-NEXT:    %[[C1:.*]] = aten.op "conv2d.default"(%x, %[[W1]], %[[B1]])
// CHECK-NEXT:    %[[W2:.*]] = aten.param parameter "conv.weight_folded_1" : tensor<2x2x1x1xf32>
// CHECK-NEXT:    %[[B2:.*]] = aten.param parameter "conv.bias_folded_1" : tensor<2xf32>
// CHECK-NEXT:    %[[C2:.*]] = aten.op "conv2d.default"(%x, %[[W2]], %[[B2]])
// CHECK-NEXT:    func.return %[[C1]], %[[C2]]
func.func @shared_weight(%x: tensor<1x2x3x3xf32>) -> (tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>) {
  %w = aten.param parameter "conv.weight" = dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]> : tensor<2x2x1x1xf32>
  %m = aten.param buffer "bn.running_mean" = dense<1.0> : tensor<2xf32>
  %v = aten.param buffer "bn.running_var" = dense<3.0> : tensor<2xf32>
  %m2 = aten.param buffer "bn2.running_mean" = dense<-1.0> : tensor<2xf32>
  %c1 = aten.op "conv2d.default"(%x, %w) : (tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x3x3xf32>
  %y1 = aten.op "batch_norm.default"(%c1, none, none, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<1x2x3x3xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x3x3xf32>
  %c2 = aten.op "conv2d.default"(%x, %w) : (tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x3x3xf32>
  %y2 = aten.op "batch_norm.default"(%c2, none, none, %m2, %v, false, 0.1, 1.0e-05, false) : (tensor<1x2x3x3xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x3x3xf32>
  func.return %y1, %y2 : tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>
}

// CHECK-NOT: batch_norm
