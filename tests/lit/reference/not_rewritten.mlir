// RUN: qir-opt %s -p reference-rewrite | filecheck %s

// What reference-rewrite does not recognise keeps its Q/DQ form exactly, and the stage moves on.

!u = !quant.uniform<u8:f32, 5.000000e-02:128>
!c = !quant.uniform<u8:f32:1, {1.000000e-01,2.000000e-01}>

// CHECK: builtin.module attributes {qir.stage = "reference"}
builtin.module attributes {qir.stage = "quantized"} {
  // A reduction with no ref op; a conv whose weight is an activation, not a constant; a linear
  // whose input is quantized per channel; a quantize of a float op's result that is read
  // by something else too.
  // CHECK-LABEL: func.func @kept(
  // CHECK-NEXT:    %[[X:.*]] = quant.qcast %x
  // CHECK-NEXT:    %[[XD:.*]] = quant.dcast %[[X]]
  // CHECK-NEXT:    %[[S:.*]] = aten.op "_softmax.default"(%[[XD]], -1, false)
  // CHECK-NEXT:    %[[SQ:.*]] = quant.qcast %[[S]]
  // CHECK-NEXT:    %[[SD:.*]] = quant.dcast %[[SQ]]
  // CHECK-NEXT:    %[[W:.*]] = quant.qcast %w
  // CHECK-NEXT:    %[[WD:.*]] = quant.dcast %[[W]]
  // CHECK-NEXT:    aten.op "conv2d.default"(%[[XD]], %[[WD]])
  // CHECK-NEXT:    %[[P:.*]] = quant.dcast %p
  // CHECK-NEXT:    aten.op "linear.default"(%[[P]], %{{.*}})
  // CHECK-NEXT:    %[[M:.*]] = aten.op "mul.Tensor"(%[[XD]], %[[XD]])
  // CHECK-NEXT:    quant.qcast %[[M]]
  // CHECK-NEXT:    aten.op "sum.default"(%[[M]])
  // CHECK-NOT:     ref.
  func.func @kept(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x3x3xf32>, %p: tensor<3x2x!c>, %l: tensor<5x2xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x3x2x2xf32>, tensor<3x5xf32>, tensor<1x2x4x4x!u>, tensor<f32>) {
    %x_q = quant.qcast %x : tensor<1x2x4x4xf32> to tensor<1x2x4x4x!u>
    %x_dq = quant.dcast %x_q : tensor<1x2x4x4x!u> to tensor<1x2x4x4xf32>
    %s = aten.op "_softmax.default"(%x_dq, -1, false) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
    %s_q = quant.qcast %s : tensor<1x2x4x4xf32> to tensor<1x2x4x4x!quant.uniform<u8:f32, 3.906250e-03>>
    %s_dq = quant.dcast %s_q : tensor<1x2x4x4x!quant.uniform<u8:f32, 3.906250e-03>> to tensor<1x2x4x4xf32>
    %w_q = quant.qcast %w : tensor<3x2x3x3xf32> to tensor<3x2x3x3x!quant.uniform<i8:f32, 1.000000e-02>>
    %w_dq = quant.dcast %w_q : tensor<3x2x3x3x!quant.uniform<i8:f32, 1.000000e-02>> to tensor<3x2x3x3xf32>
    %c = aten.op "conv2d.default"(%x_dq, %w_dq) : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x2x2xf32>
    %p_dq = quant.dcast %p : tensor<3x2x!c> to tensor<3x2xf32>
    %lin = aten.op "linear.default"(%p_dq, %l) : (tensor<3x2xf32>, tensor<5x2xf32>) -> tensor<3x5xf32>
    %m = aten.op "mul.Tensor"(%x_dq, %x_dq) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
    %m_q = quant.qcast %m : tensor<1x2x4x4xf32> to tensor<1x2x4x4x!u>
    %m_s = aten.op "sum.default"(%m) : (tensor<1x2x4x4xf32>) -> tensor<f32>
    func.return %s_dq, %c, %lin, %m_q, %m_s : tensor<1x2x4x4xf32>, tensor<1x3x2x2xf32>, tensor<3x5xf32>, tensor<1x2x4x4x!u>, tensor<f32>
  }
}
