// RUN: qir-opt %s -p 'reference-rewrite{backend=reference},lower-reference' | filecheck %s

// From the Q/DQ form: the reference table accepts every ref op in every storage type, so an
// int8 matmul (which x86 refuses) is rewritten and stays a ref op after lowering. (Lowering the
// Q/DQ form directly is refused before anything runs, as for every backend: x86/errors.mlir.)

!a = !quant.uniform<i8:f32, 2.000000e-02:-1>
!y = !quant.uniform<i8:f32, 1.000000e-01:5>

// CHECK:         builtin.module attributes {qir.stage = "lowered", qir.backend = "reference"}
// CHECK-LABEL:   func.func @forward(
// CHECK-NEXT:      %[[A:.*]] = quant.qcast %a
// CHECK-NEXT:      %[[B:.*]] = quant.qcast %b
// CHECK-NEXT:      %[[M:.*]] = ref.matmul(%[[A]], %[[B]]) : (tensor<2x3x4x!quant.uniform<i8:f32, 2.000000e-02:-1>>, tensor<2x4x5x!quant.uniform<i8:f32, 2.000000e-02:-1>>) -> tensor<2x3x5x!quant.uniform<i8:f32, 1.000000e-01:5>>
// CHECK-NEXT:      %[[D:.*]] = quant.dcast %[[M]]
// CHECK-NEXT:      func.return %[[D]]

builtin.module attributes {qir.stage = "quantized"} {
  func.func @forward(%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>) -> tensor<2x3x5xf32> {
    %a_q = quant.qcast %a : tensor<2x3x4xf32> to tensor<2x3x4x!a>
    %b_q = quant.qcast %b : tensor<2x4x5xf32> to tensor<2x4x5x!a>
    %a_dq = quant.dcast %a_q : tensor<2x3x4x!a> to tensor<2x3x4xf32>
    %b_dq = quant.dcast %b_q : tensor<2x4x5x!a> to tensor<2x4x5xf32>
    %m = aten.op "bmm.default"(%a_dq, %b_dq) : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
    %m_q = quant.qcast %m : tensor<2x3x5xf32> to tensor<2x3x5x!y>
    %m_dq = quant.dcast %m_q : tensor<2x3x5x!y> to tensor<2x3x5xf32>
    func.return %m_dq : tensor<2x3x5xf32>
  }
}
