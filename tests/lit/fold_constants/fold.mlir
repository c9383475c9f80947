// RUN: qir-opt %s -p fold-constants | filecheck %s
// RUN: qir-opt %s -p fold-constants --timing 2>&1 | filecheck %s --check-prefix=COUNT

// COUNT: fold-constants  (folded: 4)

// Ops that read only constants become constants: a weight computed by the forward reaches the
// linear as a parameter, a chain folds whole, and the constants it read go once unused.

builtin.module attributes {qir.stage = "float"} {
  // CHECK-LABEL: func.func @scaled_weight(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "fc.mul_folded" : tensor<3x2xf32>
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]], none)
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @scaled_weight(%x: tensor<4x2xf32>) -> tensor<4x3xf32> {
    %w = aten.param parameter "fc.weight" = dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
    %s = aten.op "mul.Tensor"(%w, 2.0) {module = "fc"} : (tensor<3x2xf32>) -> tensor<3x2xf32>
    %y = aten.op "linear.default"(%x, %s, none) : (tensor<4x2xf32>, tensor<3x2xf32>) -> tensor<4x3xf32>
    func.return %y : tensor<4x3xf32>
  }

  // A chain: transpose, then a division by a norm of two constants.
  // CHECK-LABEL: func.func @chain(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "w_t_div" : tensor<3x2xf32>
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]], none)
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @chain(%x: tensor<4x2xf32>) -> tensor<4x3xf32> {
    %w = aten.param parameter "w" = dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
    %g = aten.param constant "g" = dense<4.0> : tensor<f32>
    %t = aten.op "t.default"(%w) : (tensor<2x3xf32>) -> tensor<3x2xf32>
    %d = aten.op "div.Tensor"(%t, %g) : (tensor<3x2xf32>, tensor<f32>) -> tensor<3x2xf32>
    %y = aten.op "linear.default"(%x, %d, none) : (tensor<4x2xf32>, tensor<3x2xf32>) -> tensor<4x3xf32>
    func.return %y : tensor<4x3xf32>
  }

  // No operand at all: a constant too (position ids).
  // CHECK-LABEL: func.func @no_operands(
  // CHECK-NEXT:    %[[A:.*]] = aten.param constant "arange_folded" : tensor<4xi64>
  // CHECK-NEXT:    func.return %[[A]]
  func.func @no_operands() -> tensor<4xi64> {
    %a = aten.op "arange.default"(4, dtype = #aten.dtype<int64>) : () -> tensor<4xi64>
    func.return %a : tensor<4xi64>
  }
}
