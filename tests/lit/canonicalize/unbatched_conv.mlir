// RUN: qir-opt %s -p canonicalize | filecheck %s

// torch accepts convolutions of unbatched inputs (`conv2d` of C x H x W); backends'
// kernels take batches. canonicalize makes it a convolution of a batch of one.
// CHECK-LABEL: func.func @conv2d(
// CHECK-SAME:      %[[X:[^:]*]]: tensor<3x6x6xf32>
// CHECK:         %[[U:.*]] = aten.op "unsqueeze.default"(%[[X]], 0) {module = "c"} : (tensor<3x6x6xf32>) -> tensor<1x3x6x6xf32>
// CHECK-NEXT:    %[[C:.*]] = aten.op "conv2d.default"(%[[U]], %{{.*}}, %{{.*}}) {module = "c"} : (tensor<1x3x6x6xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4xf32>
// CHECK-NEXT:    %[[S:.*]] = aten.op "squeeze.dim"(%[[C]], 0) {module = "c"} : (tensor<1x4x4x4xf32>) -> tensor<4x4x4xf32>
// CHECK-NEXT:    func.return %[[S]] : tensor<4x4x4xf32>
func.func @conv2d(%x: tensor<3x6x6xf32>) -> tensor<4x4x4xf32> {
  %w = aten.param constant "w" = dense<1.0> : tensor<4x3x3x3xf32>
  %b = aten.param constant "b" = dense<0.0> : tensor<4xf32>
  %y = aten.op "conv2d.default"(%x, %w, %b) {module = "c"} : (tensor<3x6x6xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<4x4x4xf32>
  func.return %y : tensor<4x4x4xf32>
}

// Transposed convolutions too; a batched convolution stays as it is.
// CHECK-LABEL: func.func @transposed(
// CHECK:         aten.op "unsqueeze.default"(%{{.*}}, 0) : (tensor<2x5xf32>) -> tensor<1x2x5xf32>
// CHECK-NEXT:    aten.op "conv_transpose1d.default"(%{{.*}}, %{{.*}}) : (tensor<1x2x5xf32>, tensor<2x3x2xf32>) -> tensor<1x3x6xf32>
// CHECK-NEXT:    aten.op "squeeze.dim"(%{{.*}}, 0) : (tensor<1x3x6xf32>) -> tensor<3x6xf32>
// CHECK-NEXT:    aten.op "conv1d.default"(%{{.*}}, %{{.*}}) : (tensor<4x3x6xf32>, tensor<2x3x1xf32>) -> tensor<4x2x6xf32>
// CHECK-NOT:     squeeze
func.func @transposed(%x: tensor<2x5xf32>, %z: tensor<4x3x6xf32>) -> (tensor<3x6xf32>, tensor<4x2x6xf32>) {
  %w = aten.param constant "w" = dense<1.0> : tensor<2x3x2xf32>
  %v = aten.param constant "v" = dense<1.0> : tensor<2x3x1xf32>
  %y = aten.op "conv_transpose1d.default"(%x, %w) : (tensor<2x5xf32>, tensor<2x3x2xf32>) -> tensor<3x6xf32>
  %c = aten.op "conv1d.default"(%z, %v) : (tensor<4x3x6xf32>, tensor<2x3x1xf32>) -> tensor<4x2x6xf32>
  func.return %y, %c : tensor<3x6xf32>, tensor<4x2x6xf32>
}
