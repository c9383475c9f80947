// RUN: qir-opt %s -p canonicalize | filecheck %s

// Pure ops nobody reads go, with the parameters only they read; what the
// function returns stays, and returning an input argument is fine.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME:      %[[X:[^:]*]]: tensor<2x4xf32>
// CHECK-NEXT:    %[[W:.*]] = aten.param constant "w" = dense<1.000000e+00> : tensor<4x4xf32>
// CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%[[X]], %[[W]])
// CHECK-NEXT:    func.return %[[Y]], %[[X]] : tensor<2x4xf32>, tensor<2x4xf32>
// CHECK-NEXT:  }
func.func @forward(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %w = aten.param constant "w" = dense<1.0> : tensor<4x4xf32>
  %unused_w = aten.param constant "unused" = dense<2.0> : tensor<4x4xf32>
  %y = aten.op "linear.default"(%x, %w) : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %dead = aten.op "linear.default"(%x, %unused_w) : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %dead2 = aten.op "relu.default"(%dead) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %dead3 = aten.op "add.Tensor"(%dead2, %y) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %y, %x : tensor<2x4xf32>, tensor<2x4xf32>
}

// An op with several results is used when any of them is.
// CHECK-LABEL: func.func @multi_result(
// CHECK-NEXT:    %[[P:.*]], %[[I:.*]] = aten.op "max_pool2d_with_indices.default"
// CHECK-NOT:     aten.op "max_pool2d_with_indices.default"
// CHECK-NOT:     aten.op "split.Tensor"
// CHECK-NEXT:    func.return %[[I]] : tensor<1x1x2x2xi64>
func.func @multi_result(%x: tensor<1x1x4x4xf32>) -> tensor<1x1x2x2xi64> {
  %p, %i = aten.op "max_pool2d_with_indices.default"(%x, [2, 2]) : (tensor<1x1x4x4xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x1x2x2xi64>)
  %q, %j = aten.op "max_pool2d_with_indices.default"(%x, [2, 2], [1, 1]) : (tensor<1x1x4x4xf32>) -> (tensor<1x1x3x3xf32>, tensor<1x1x3x3xi64>)
  %a, %b = aten.op "split.Tensor"(%x, 2, 2) : (tensor<1x1x4x4xf32>) -> (tensor<1x1x2x4xf32>, tensor<1x1x2x4xf32>)
  func.return %i : tensor<1x1x2x2xi64>
}

// Symbolic shape arithmetic is pure too.
// CHECK-LABEL: func.func @symbolic(
// CHECK-NEXT:    func.return
func.func @symbolic(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %n = aten.op "sym_size.int"(%x, 0) : (tensor<?x4xf32>) -> i64
  %m = aten.op "py::operator.mul"(%n, 4) : (i64) -> i64
  func.return %x : tensor<?x4xf32>
}

// What has an effect stays, used or not: random ops (training-mode dropout),
// in-place ops, buffer write-backs with what computes them, runtime asserts.
// CHECK-LABEL: func.func @effects(
// CHECK-SAME:      %[[X:[^:]*]]: tensor<2x4xf32>
// CHECK-NEXT:    %[[B:.*]] = aten.param buffer "running_mean" = dense<0.000000e+00> : tensor<4xf32>
// CHECK-NEXT:    aten.op "dropout.default"(%{{.*}}, 0.5, true)
// CHECK-NEXT:    aten.op "bernoulli.p"(%{{.*}}, 0.5)
// CHECK-NEXT:    aten.op "rand_like.default"
// CHECK-NEXT:    %[[T:.*]] = aten.op "clone.default"(%[[X]])
// CHECK-NEXT:    aten.op "relu_.default"(%[[T]])
// CHECK-NEXT:    aten.op "_assert_tensor_metadata.default"(%[[X]], dtype = #aten.dtype<float32>)
// CHECK-NEXT:    %[[N:.*]] = aten.op "_local_scalar_dense.default"
// CHECK-NEXT:    aten.op "sym_constrain_range_for_size.default"(%[[N]], min = 0)
// CHECK-NEXT:    %[[GE:.*]] = aten.op "py::operator.ge"(%[[N]], 0)
// CHECK-NEXT:    aten.op "_assert_scalar.default"(%[[GE]], "u0 >= 0")
// CHECK-NEXT:    %[[M:.*]] = aten.op "mean.dim"
// CHECK-NEXT:    %[[U:.*]] = aten.op "add.Tensor"(%[[B]], %[[M]])
// CHECK-NEXT:    aten.param_update "running_mean", %[[U]] : tensor<4xf32>
// CHECK-NEXT:    func.return %[[X]]
func.func @effects(%x: tensor<2x4xf32>, %s: tensor<i64>) -> tensor<2x4xf32> {
  %b = aten.param buffer "running_mean" = dense<0.0> : tensor<4xf32>
  %d = aten.op "dropout.default"(%x, 0.5, true) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %r = aten.op "bernoulli.p"(%x, 0.5) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %n = aten.op "rand_like.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %t = aten.op "clone.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %t2 = aten.op "relu_.default"(%t) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  aten.op "_assert_tensor_metadata.default"(%x, dtype = #aten.dtype<float32>) : (tensor<2x4xf32>) -> ()
  %u = aten.op "_local_scalar_dense.default"(%s) : (tensor<i64>) -> i64
  aten.op "sym_constrain_range_for_size.default"(%u, min = 0) : (i64) -> ()
  %ge = aten.op "py::operator.ge"(%u, 0) : (i64) -> i1
  aten.op "_assert_scalar.default"(%ge, "u0 >= 0") : (i1) -> ()
  %m = aten.op "mean.dim"(%x, [0]) : (tensor<2x4xf32>) -> tensor<4xf32>
  %upd = aten.op "add.Tensor"(%b, %m) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  aten.param_update "running_mean", %upd : tensor<4xf32>
  func.return %x : tensor<2x4xf32>
}

// A buffer that is only written back keeps its `aten.param`: the write names it.
// CHECK-LABEL: func.func @write_only_buffer(
// CHECK-NEXT:    aten.param buffer "buf"
// CHECK-NEXT:    aten.param_update "buf", %{{.*}} : tensor<2x4xf32>
func.func @write_only_buffer(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %b = aten.param buffer "buf" = dense<0.0> : tensor<2x4xf32>
  aten.param_update "buf", %x : tensor<2x4xf32>
  func.return %x : tensor<2x4xf32>
}
