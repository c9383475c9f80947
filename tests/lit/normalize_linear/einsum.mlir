// RUN: qir-opt %s -p normalize-linear | filecheck %s
// RUN: qir-opt %s -p normalize-linear --timing 2>&1 | filecheck %s --check-prefix=COUNT

// COUNT: normalize-linear  (einsum: 2, transposed-weight: 1)

// An `einsum` whose equation is a linear layer's (the last subscript of `x` contracted with the
// weight's, the output `x`'s others then the weight's other) becomes `linear.default`; any other
// equation stays.

builtin.module attributes {qir.stage = "float"} {
  // CHECK-LABEL: func.func @out_in(
  // CHECK-NEXT:    %[[P:.*]] = aten.param parameter "p"
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[P]]) {module = "proj"} : (tensor<2x5x3xf32>, tensor<2x3xf32>) -> tensor<2x5x2xf32>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @out_in(%x: tensor<2x5x3xf32>) -> tensor<2x5x2xf32> {
    %p = aten.param parameter "p" = dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
    %y = aten.op "einsum.default"("bsk,nk->bsn", [%x, %p]) {module = "proj"} : (tensor<2x5x3xf32>, tensor<2x3xf32>) -> tensor<2x5x2xf32>
    func.return %y : tensor<2x5x2xf32>
  }

  // CHECK-LABEL: func.func @in_out(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "w_t" : tensor<2x3xf32>
  // CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%x, %[[W]]) : (tensor<4x3xf32>, tensor<2x3xf32>) -> tensor<4x2xf32>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @in_out(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
    %w = aten.param parameter "w" = dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]> : tensor<3x2xf32>
    %y = aten.op "einsum.default"("...k,kn->...n", [%x, %w]) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    func.return %y : tensor<4x2xf32>
  }

  // A contraction over another subscript, an output transposed, a product of activations: left alone.
  // CHECK-LABEL: func.func @left_alone(
  // CHECK-COUNT-3: aten.op "einsum.default"
  // CHECK-NOT:     linear
  func.func @left_alone(%x: tensor<3x4xf32>, %z: tensor<4x2xf32>) -> (tensor<4x2xf32>, tensor<2x3xf32>, tensor<3x2xf32>) {
    %w = aten.param parameter "q" = dense<1.0> : tensor<3x2xf32>
    %a = aten.op "einsum.default"("kb,kn->bn", [%x, %w]) : (tensor<3x4xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
    %p = aten.param parameter "r" = dense<1.0> : tensor<2x4xf32>
    %b = aten.op "einsum.default"("bk,nk->nb", [%x, %p]) : (tensor<3x4xf32>, tensor<2x4xf32>) -> tensor<2x3xf32>
    %c = aten.op "einsum.default"("bk,kn->bn", [%x, %z]) : (tensor<3x4xf32>, tensor<4x2xf32>) -> tensor<3x2xf32>
    func.return %a, %b, %c : tensor<4x2xf32>, tensor<2x3xf32>, tensor<3x2xf32>
  }
}
