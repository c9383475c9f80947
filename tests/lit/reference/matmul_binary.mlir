// RUN: qir-opt %s -p reference-rewrite | filecheck %s

// matmul / bmm of two dequantized tensors → ref.matmul (quantized, or float when read in
// float); add / mul of two dequantized tensors [+ relu] + quantize → ref.add / ref.mul,
// broadcasting.

!a = !quant.uniform<u8:f32, 2.000000e-02:128>
!b = !quant.uniform<i8:f32, 5.000000e-02:-3>
!y = !quant.uniform<u8:f32, 1.000000e-01:100>

builtin.module attributes {qir.stage = "quantized"} {
  // CHECK-LABEL: func.func @matmuls(
  // CHECK-NEXT:    %[[A:.*]] = quant.qcast %a
  // CHECK-NEXT:    %[[B:.*]] = quant.qcast %b
  // CHECK-NEXT:    %[[M:.*]] = ref.matmul(%[[A]], %[[B]]) : (tensor<2x3x4x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<2x4x5x!quant.uniform<i8:f32, 5.000000e-02:-3>>) -> tensor<2x3x5x!quant.uniform<u8:f32, 1.000000e-01:100>>
  // CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[M]]
  // CHECK-NEXT:    %[[F:.*]] = ref.matmul(%[[A]], %[[B]]) : ({{.*}}) -> tensor<2x3x5xf32>
  // CHECK-NEXT:    func.return %[[D]], %[[F]]
  func.func @matmuls(%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>) -> (tensor<2x3x5xf32>, tensor<2x3x5xf32>) {
    %a_q = quant.qcast %a : tensor<2x3x4xf32> to tensor<2x3x4x!a>
    %b_q = quant.qcast %b : tensor<2x4x5xf32> to tensor<2x4x5x!b>
    %a_dq = quant.dcast %a_q : tensor<2x3x4x!a> to tensor<2x3x4xf32>
    %b_dq = quant.dcast %b_q : tensor<2x4x5x!b> to tensor<2x4x5xf32>
    %m = aten.op "matmul.default"(%a_dq, %b_dq) : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
    %m_q = quant.qcast %m : tensor<2x3x5xf32> to tensor<2x3x5x!y>
    %m_dq = quant.dcast %m_q : tensor<2x3x5x!y> to tensor<2x3x5xf32>
    %f = aten.op "bmm.default"(%a_dq, %b_dq) : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
    func.return %m_dq, %f : tensor<2x3x5xf32>, tensor<2x3x5xf32>
  }

  // CHECK-LABEL: func.func @binary(
  // CHECK:         %[[S:.*]] = ref.add(%{{.*}}, %{{.*}}) {post = "relu"} : (tensor<2x3x4x4x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<2x3x1x1x!quant.uniform<u8:f32, 2.000000e-02:128>>) -> tensor<2x3x4x4x!quant.uniform<u8:f32, 1.000000e-01:100>>
  // CHECK-NEXT:    %[[P:.*]] = ref.mul(%[[S]], %{{.*}}) {module = "gate"} : ({{.*}}) -> tensor<2x3x4x4x!quant.uniform<u8:f32, 1.000000e-01:100>>
  // CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[P]]
  // CHECK-NEXT:    func.return %[[D]]
  func.func @binary(%a: tensor<2x3x4x4xf32>, %g: tensor<2x3x1x1xf32>) -> tensor<2x3x4x4xf32> {
    %a_q = quant.qcast %a : tensor<2x3x4x4xf32> to tensor<2x3x4x4x!a>
    %g_q = quant.qcast %g : tensor<2x3x1x1xf32> to tensor<2x3x1x1x!a>
    %a_dq = quant.dcast %a_q : tensor<2x3x4x4x!a> to tensor<2x3x4x4xf32>
    %g_dq = quant.dcast %g_q : tensor<2x3x1x1x!a> to tensor<2x3x1x1xf32>
    %s = aten.op "add.Tensor"(%a_dq, %g_dq) : (tensor<2x3x4x4xf32>, tensor<2x3x1x1xf32>) -> tensor<2x3x4x4xf32>
    %r = aten.op "relu.default"(%s) : (tensor<2x3x4x4xf32>) -> tensor<2x3x4x4xf32>
    %r_q = quant.qcast %r : tensor<2x3x4x4xf32> to tensor<2x3x4x4x!y>
    %r_dq = quant.dcast %r_q : tensor<2x3x4x4x!y> to tensor<2x3x4x4xf32>
    %p = aten.op "mul.Tensor"(%r_dq, %g_dq) {module = "gate"} : (tensor<2x3x4x4xf32>, tensor<2x3x1x1xf32>) -> tensor<2x3x4x4xf32>
    %p_q = quant.qcast %p : tensor<2x3x4x4xf32> to tensor<2x3x4x4x!y>
    %p_dq = quant.dcast %p_q : tensor<2x3x4x4x!y> to tensor<2x3x4x4xf32>
    func.return %p_dq : tensor<2x3x4x4xf32>
  }

  // Without a quantize after it, an add has no ref op (ref.add's result is quantized): it stays.
  // CHECK-LABEL: func.func @float_add(
  // CHECK:         aten.op "add.Tensor"
  // CHECK-NOT:     ref.
  func.func @float_add(%a: tensor<4xf32>) -> tensor<4xf32> {
    %a_q = quant.qcast %a : tensor<4xf32> to tensor<4x!a>
    %a_dq = quant.dcast %a_q : tensor<4x!a> to tensor<4xf32>
    %s = aten.op "add.Tensor"(%a_dq, %a_dq) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    func.return %s : tensor<4xf32>
  }
}
