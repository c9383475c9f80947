// RUN: qir-opt %s -p fold-constants | filecheck %s

// What stays a computation: an op reading an activation, a random op, a parameter some
// aten.param_update writes, a result an in-place op writes, a result far larger than its
// operands (an expand to 12 MiB), a parameter written in place through a view.

builtin.module attributes {qir.stage = "float"} {
  // CHECK-LABEL: func.func @kept(
  // CHECK:         aten.op "mul.Tensor"(%x, %w)
  // CHECK:         aten.op "rand_like.default"(%w)
  // CHECK:         aten.op "neg.default"(%r)
  // CHECK:         aten.op "abs.default"(%w)
  // CHECK-NEXT:    aten.op "relu_.default"
  // CHECK:         aten.op "expand.default"(%w, [1048576, 3])
  // CHECK-NOT:     aten.param parameter "w.
  func.func @kept(%x: tensor<1x3xf32>, %z: tensor<1x3xf32>) -> (tensor<1x3xf32>, tensor<1x3xf32>, tensor<1x3xf32>, tensor<1x3xf32>, tensor<1048576x3xf32>) {
    %w = aten.param parameter "w" = dense<[[1.0, -2.0, 3.0]]> : tensor<1x3xf32>
    %r = aten.param buffer "running" = dense<[[0.5, 0.5, 0.5]]> : tensor<1x3xf32>
    %m = aten.op "mul.Tensor"(%x, %w) : (tensor<1x3xf32>, tensor<1x3xf32>) -> tensor<1x3xf32>
    %n = aten.op "rand_like.default"(%w) : (tensor<1x3xf32>) -> tensor<1x3xf32>
    %k = aten.op "neg.default"(%r) : (tensor<1x3xf32>) -> tensor<1x3xf32>
    aten.param_update "running", %z : tensor<1x3xf32>
    %a = aten.op "abs.default"(%w) : (tensor<1x3xf32>) -> tensor<1x3xf32>
    %i = aten.op "relu_.default"(%a) : (tensor<1x3xf32>) -> tensor<1x3xf32>
    %e = aten.op "expand.default"(%w, [1048576, 3]) : (tensor<1x3xf32>) -> tensor<1048576x3xf32>
    func.return %m, %n, %k, %i, %e : tensor<1x3xf32>, tensor<1x3xf32>, tensor<1x3xf32>, tensor<1x3xf32>, tensor<1048576x3xf32>
  }

  // A parameter written in place through a view of it that the op does not read
  // (`w.t().mul_(2)`): the next call would read other values.
  // CHECK-LABEL: func.func @written_through_a_view(
  // CHECK:         aten.op "neg.default"(%w)
  // CHECK-NOT:     aten.param parameter "w.
  func.func @written_through_a_view() -> tensor<1x3xf32> {
    %w = aten.param parameter "w" = dense<[[1.0, -2.0, 3.0]]> : tensor<1x3xf32>
    %k = aten.op "neg.default"(%w) : (tensor<1x3xf32>) -> tensor<1x3xf32>
    %v = aten.op "t.default"(%w) : (tensor<1x3xf32>) -> tensor<3x1xf32>
    %d = aten.op "mul_.Scalar"(%v, 2.0) : (tensor<3x1xf32>) -> tensor<3x1xf32>
    func.return %k : tensor<1x3xf32>
  }
}
