// RUN: qir-opt %s -p canonicalize | filecheck %s

// `x.relu() + x.relu()`: the second relu is the first; so is the second
// `aten.param` of one name, and what is computed from duplicates.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME:      %[[X:[^:]*]]: tensor<2x4xf32>
// CHECK-NEXT:    %[[W:.*]] = aten.param parameter "fc.weight" = dense<1.000000e+00> : tensor<4x4xf32>
// CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%[[X]], %[[W]])
// CHECK-NEXT:    %[[R:.*]] = aten.op "relu.default"(%[[Y]])
// CHECK-NEXT:    %[[S:.*]] = aten.op "add.Tensor"(%[[R]], %[[R]])
// CHECK-NEXT:    func.return %[[S]], %[[Y]] : tensor<2x4xf32>, tensor<2x4xf32>
func.func @forward(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %w = aten.param parameter "fc.weight" = dense<1.0> : tensor<4x4xf32>
  %w2 = aten.param parameter "fc.weight" = dense<1.0> : tensor<4x4xf32>
  %y = aten.op "linear.default"(%x, %w) : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %y2 = aten.op "linear.default"(%x, %w2) : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %r1 = aten.op "relu.default"(%y) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %r2 = aten.op "relu.default"(%y2) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %s = aten.op "add.Tensor"(%r1, %r2) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %s, %y2 : tensor<2x4xf32>, tensor<2x4xf32>
}

// Ops with several results merge as a whole.
// CHECK-LABEL: func.func @multi_result(
// CHECK-NEXT:    %[[A:.*]], %[[B:.*]] = aten.op "max_pool2d_with_indices.default"
// CHECK-NEXT:    func.return %[[A]], %[[B]], %[[A]] :
func.func @multi_result(%x: tensor<1x1x4x4xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x1x2x2xi64>, tensor<1x1x2x2xf32>) {
  %a, %b = aten.op "max_pool2d_with_indices.default"(%x, [2, 2]) : (tensor<1x1x4x4xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x1x2x2xi64>)
  %c, %d = aten.op "max_pool2d_with_indices.default"(%x, [2, 2]) : (tensor<1x1x4x4xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x1x2x2xi64>)
  func.return %a, %d, %c : tensor<1x1x2x2xf32>, tensor<1x1x2x2xi64>, tensor<1x1x2x2xf32>
}

// Keyword arguments in another order are the same arguments.
// CHECK-LABEL: func.func @kwargs_order(
// CHECK-COUNT-1: aten.op "sum.dim_IntList"
// CHECK-NOT:     aten.op "sum.dim_IntList"
// CHECK:         func.return %[[S:.*]], %[[S]] :
func.func @kwargs_order(%x: tensor<2x4xf32>) -> (tensor<2xf32>, tensor<2xf32>) {
  %a = aten.op "sum.dim_IntList"(%x, [1], keepdim = false, dtype = #aten.dtype<float32>) : (tensor<2x4xf32>) -> tensor<2xf32>
  %b = aten.op "sum.dim_IntList"(%x, [1], dtype = #aten.dtype<float32>, keepdim = false) : (tensor<2x4xf32>) -> tensor<2xf32>
  func.return %a, %b : tensor<2xf32>, tensor<2xf32>
}

// Not duplicates: other arguments (0.0 and -0.0 differ: x + -0.0 keeps -0.0,
// 1 and 1.0 promote differently), other operands, other result types, other
// provenance (a `set_module_name` must still see both), other parameters.
// CHECK-LABEL: func.func @distinct(
// CHECK-COUNT-2: aten.op "add.Tensor"(%{{.*}}, 0.0)
// CHECK-NEXT:    aten.op "add.Tensor"(%{{.*}}, -0.0)
// CHECK-NEXT:    aten.op "mul.Tensor"(%{{.*}}, 1)
// CHECK-NEXT:    aten.op "mul.Tensor"(%{{.*}}, 1.0)
// CHECK-NEXT:    aten.op "relu.default"(%{{.*}}) {module = "a"}
// CHECK-NEXT:    aten.op "relu.default"(%{{.*}}) {module = "b"}
// CHECK-NEXT:    aten.op "sum.default"(%{{.*}}) : (tensor<2x4xi64>) -> tensor<i64>
// CHECK-NEXT:    aten.op "sum.default"(%{{.*}}, dtype = #aten.dtype<float32>) : (tensor<2x4xi64>) -> tensor<f32>
// CHECK-NEXT:    aten.param parameter "p" = dense<1.000000e+00>
// CHECK-NEXT:    aten.param parameter "q" = dense<1.000000e+00>
// CHECK-NEXT:    aten.param buffer "p" = dense<1.000000e+00>
func.func @distinct(%x: tensor<2x4xf32>, %z: tensor<2x4xf32>, %i: tensor<2x4xi64>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<i64>, tensor<f32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %a = aten.op "add.Tensor"(%x, 0.0) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %a2 = aten.op "add.Tensor"(%z, 0.0) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %b = aten.op "add.Tensor"(%x, -0.0) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %c = aten.op "mul.Tensor"(%x, 1) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %d = aten.op "mul.Tensor"(%x, 1.0) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %e = aten.op "relu.default"(%x) {module = "a"} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %f = aten.op "relu.default"(%x) {module = "b"} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %g = aten.op "sum.default"(%i) : (tensor<2x4xi64>) -> tensor<i64>
  %h = aten.op "sum.default"(%i, dtype = #aten.dtype<float32>) : (tensor<2x4xi64>) -> tensor<f32>
  %p = aten.param parameter "p" = dense<1.0> : tensor<4xf32>
  %q = aten.param parameter "q" = dense<1.0> : tensor<4xf32>
  %pb = aten.param buffer "p" = dense<1.0> : tensor<4xf32>
  func.return %a, %a2, %b, %c, %d, %e, %f, %g, %h, %p, %q, %pb : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<i64>, tensor<f32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// Random ops are never duplicates of each other, nor are computations on a
// tensor written in place between them.
// CHECK-LABEL: func.func @impure(
// CHECK-COUNT-2: aten.op "dropout.default"(%{{.*}}, 0.5, true)
// CHECK-COUNT-2: aten.op "rand_like.default"
// CHECK-NEXT:    aten.op "relu.default"
// CHECK-NEXT:    aten.op "add_.Tensor"
// CHECK-NEXT:    aten.op "relu.default"
func.func @impure(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %a = aten.op "dropout.default"(%x, 0.5, true) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %b = aten.op "dropout.default"(%x, 0.5, true) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %c = aten.op "rand_like.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %d = aten.op "rand_like.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %e = aten.op "relu.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %w = aten.op "add_.Tensor"(%x, 1.0) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %f = aten.op "relu.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %a, %b, %c, %d, %e, %f : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>
}
