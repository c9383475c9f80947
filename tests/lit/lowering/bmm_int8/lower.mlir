// REQUIRES: qir-bmm-backend
// RUN: qir-opt %s --split-input-file -p 'reference-rewrite{backend=bmm-int8},lower-bmm-int8' | filecheck %s

// The external backend `bmm-int8` (examples/qir_bmm_backend, found through its entry point; its
// dialect is `qbmm`): the RFC's bmm + softmax, in the Q/DQ form its quantizer leaves (no quantize
// between the bmm and the softmax), is one `qbmm.bmm_softmax`; the bmm read in float is `qbmm.bmm`
// to a float result.

!qa = !quant.uniform<i8:f32, 2.0e-02:1>
!qb = !quant.uniform<i8:f32, 2.0e-02:-10>
!qp = !quant.uniform<i8:f32, 3.906250e-03:-128>
!qv = !quant.uniform<i8:f32, 2.0e-02:9>
builtin.module attributes {qir.stage = "quantized"} {
  func.func @forward(%q: tensor<2x4x8xf32>, %k: tensor<2x4x8xf32>, %v: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %t = aten.op "transpose.int"(%k, 1, 2) : (tensor<2x4x8xf32>) -> tensor<2x8x4xf32>
    %q_q = quant.qcast %q : tensor<2x4x8xf32> to tensor<2x4x8x!qa>
    %q_dq = quant.dcast %q_q : tensor<2x4x8x!qa> to tensor<2x4x8xf32>
    %t_q = quant.qcast %t : tensor<2x8x4xf32> to tensor<2x8x4x!qb>
    %t_dq = quant.dcast %t_q : tensor<2x8x4x!qb> to tensor<2x8x4xf32>
    %s = aten.op "bmm.default"(%q_dq, %t_dq) : (tensor<2x4x8xf32>, tensor<2x8x4xf32>) -> tensor<2x4x4xf32>
    %p = aten.op "softmax.int"(%s, -1) : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    %p_q = quant.qcast %p : tensor<2x4x4xf32> to tensor<2x4x4x!qp>
    %p_dq = quant.dcast %p_q : tensor<2x4x4x!qp> to tensor<2x4x4xf32>
    %v_q = quant.qcast %v : tensor<2x4x8xf32> to tensor<2x4x8x!qv>
    %v_dq = quant.dcast %v_q : tensor<2x4x8x!qv> to tensor<2x4x8xf32>
    %o = aten.op "bmm.default"(%p_dq, %v_dq) : (tensor<2x4x4xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    func.return %o : tensor<2x4x8xf32>
  }
}

// -----

// The float logits are returned too: the fusion is blocked, the bmm runs alone to a float result
// and the softmax stays float.

!qa = !quant.uniform<i8:f32, 2.0e-02:1>
!qp = !quant.uniform<i8:f32, 3.906250e-03:-128>
builtin.module attributes {qir.stage = "quantized"} {
  func.func @forward(%a: tensor<2x4x8xf32>, %b: tensor<2x8x4xf32>) -> (tensor<2x4x4x!qp>, tensor<2x4x4xf32>) {
    %a_q = quant.qcast %a : tensor<2x4x8xf32> to tensor<2x4x8x!qa>
    %a_dq = quant.dcast %a_q : tensor<2x4x8x!qa> to tensor<2x4x8xf32>
    %b_q = quant.qcast %b : tensor<2x8x4xf32> to tensor<2x8x4x!qa>
    %b_dq = quant.dcast %b_q : tensor<2x8x4x!qa> to tensor<2x8x4xf32>
    %s = aten.op "bmm.default"(%a_dq, %b_dq) : (tensor<2x4x8xf32>, tensor<2x8x4xf32>) -> tensor<2x4x4xf32>
    %p = aten.op "softmax.int"(%s, -1) : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    %p_q = quant.qcast %p : tensor<2x4x4xf32> to tensor<2x4x4x!qp>
    func.return %p_q, %s : tensor<2x4x4x!qp>, tensor<2x4x4xf32>
  }
}

// CHECK:      builtin.module attributes {qir.stage = "lowered", qir.backend = "bmm-int8"}
// CHECK:      %[[Q:.*]] = quant.qcast %q
// CHECK-NEXT: %[[T:.*]] = quant.qcast %t
// CHECK-NEXT: %[[P:.*]] = qbmm.bmm_softmax(%[[Q]], %[[T]]) {dim = -1 : i64} : ({{.*}}) -> tensor<2x4x4x!quant.uniform<i8:f32, 3.906250e-03:-128>>
// CHECK-NEXT: %[[V:.*]] = quant.qcast %v
// CHECK-NEXT: %[[O:.*]] = qbmm.bmm(%[[P]], %[[V]]) : ({{.*}}) -> tensor<2x4x8xf32>
// CHECK-NEXT: func.return %[[O]]
// CHECK-NOT:  ref.
// CHECK:      builtin.module attributes {qir.stage = "lowered", qir.backend = "bmm-int8"}
// CHECK:      %[[S:.*]] = qbmm.bmm(%{{.*}}, %{{.*}}) : ({{.*}}) -> tensor<2x4x4xf32>
// CHECK-NEXT: %[[SM:.*]] = aten.op "softmax.int"(%[[S]], -1)
// CHECK-NEXT: quant.qcast %[[SM]]
// CHECK-NOT:  qbmm.bmm_softmax
