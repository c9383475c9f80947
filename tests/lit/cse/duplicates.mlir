// RUN: qir-opt %s -p cse | filecheck %s
// RUN: qir-opt %s -p canonicalize,cse | filecheck %s --check-prefix=CANON

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

// Any dialect's pure ops merge too: two dequantizations of one value are one.
// CHECK-LABEL: func.func @casts(
// CHECK-NEXT:    %[[D:.*]] = quant.dcast %{{.*}} : tensor<4x!quant.uniform<i8:f32, 5.000000e-02:-3>> to tensor<4xf32>
// CHECK-NEXT:    func.return %[[D]], %[[D]] :
func.func @casts(%q: tensor<4x!quant.uniform<i8:f32, 0.05:-3>>) -> (tensor<4xf32>, tensor<4xf32>) {
  %a = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 0.05:-3>> to tensor<4xf32>
  %b = quant.dcast %q : tensor<4x!quant.uniform<i8:f32, 0.05:-3>> to tensor<4xf32>
  func.return %a, %b : tensor<4xf32>, tensor<4xf32>
}

// Duplicates `canonicalize` exposes: `x.relu()` and `x.detach().relu()` read one value once
// the `detach` is gone. `cse` alone sees two operands; `canonicalize,cse` one relu.
// CHECK-LABEL: func.func @exposed(
// CHECK-COUNT-2: aten.op "relu.default"
// CANON-LABEL: func.func @exposed(
// CANON-NEXT:    %[[R:.*]] = aten.op "relu.default"(%x)
// CANON-NEXT:    func.return %[[R]], %[[R]] :
func.func @exposed(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %d = aten.op "detach.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %a = aten.op "relu.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %b = aten.op "relu.default"(%d) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %a, %b : tensor<2x4xf32>, tensor<2x4xf32>
}
