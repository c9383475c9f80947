// RUN: qir-opt %s -p cse | filecheck %s

// What `cse` keeps apart: ops that differ in anything, ops that do more than compute their
// results, and ops whose values may change between them.

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

// A tensor written in place through a view of it: what reads it before and after the write
// differs, so the two relus stay.
// CHECK-LABEL: func.func @written_through_a_view(
// CHECK-NEXT:    aten.op "relu.default"
// CHECK-NEXT:    aten.op "view.default"
// CHECK-NEXT:    aten.op "mul_.Scalar"
// CHECK-NEXT:    aten.op "relu.default"
func.func @written_through_a_view(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %a = aten.op "relu.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %v = aten.op "view.default"(%x, [8]) : (tensor<2x4xf32>) -> tensor<8xf32>
  %w = aten.op "mul_.Scalar"(%v, 2.0) : (tensor<8xf32>) -> tensor<8xf32>
  %b = aten.op "relu.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %a, %b : tensor<2x4xf32>, tensor<2x4xf32>
}

// A buffer `aten.param_update` writes back: each read of it is a read at its own place in
// the program.
// CHECK-LABEL: func.func @updated_buffer(
// CHECK-COUNT-2: aten.param buffer "count"
// CHECK:         aten.param_update "count"
func.func @updated_buffer(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %c = aten.param buffer "count" = dense<0.0> : tensor<4xf32>
  %n = aten.op "add.Tensor"(%c, %x) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %c2 = aten.param buffer "count" = dense<0.0> : tensor<4xf32>
  aten.param_update "count", %n : tensor<4xf32>
  func.return %c, %c2 : tensor<4xf32>, tensor<4xf32>
}
