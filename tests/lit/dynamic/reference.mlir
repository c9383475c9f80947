// RUN: %python %S/../reference/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p reference-rewrite | filecheck %s
// RUN: qir-opt %s --weights %t.safetensors -p reference-rewrite -o %t.mlir && qir-opt %t.mlir | filecheck %s

// A linear of a run-time-quantized input and a quantized constant weight becomes
// ref.dynamic_linear, reading the storage and the run-time scale and zero point; the
// choose_qparams and dynamic_qcast stay (the reference and the backends run them as they are).
// Printed, the reference stage parses back to the same program.

!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>

builtin.module attributes {qir.stage = "quantized"} {
  // CHECK-LABEL: func.func @per_tensor(
  // CHECK-NEXT:    %[[S:.*]], %[[Z:.*]] = quant.choose_qparams %x {quantized_type = !quant.any<u8:f32>}
  // CHECK-NEXT:    %[[Q:.*]] = quant.dynamic_qcast %x, %[[S]], %[[Z]]
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "fc.weight_q"
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "fc.bias"
  // CHECK-NEXT:    %[[Y:.*]] = ref.dynamic_linear(%[[Q]], %[[S]], %[[Z]], %[[W]], %[[B]]) {module = "fc"} : (tensor<2x8x!quant.any<u8:f32>>, tensor<f32>, tensor<i64>, tensor<4x8x!quant.uniform<i8:f32:0, {{.*}}>>, tensor<4xf32>) -> tensor<2x4xf32>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @per_tensor(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
    %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<u8:f32>} : tensor<2x8xf32> -> (tensor<f32>, tensor<i64>)
    %q = quant.dynamic_qcast %x, %s, %z : (tensor<2x8xf32>, tensor<f32>, tensor<i64>) -> tensor<2x8x!quant.any<u8:f32>>
    %dq = quant.dynamic_dcast %q, %s, %z : (tensor<2x8x!quant.any<u8:f32>>, tensor<f32>, tensor<i64>) -> tensor<2x8xf32>
    %w = aten.param parameter "fc.weight_q" : tensor<4x8x!w>
    %w_dq = quant.dcast %w : tensor<4x8x!w> to tensor<4x8xf32>
    %b = aten.param parameter "fc.bias" : tensor<4xf32>
    %y = aten.op "linear.default"(%dq, %w_dq, %b) {module = "fc"} : (tensor<2x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<2x4xf32>
    func.return %y : tensor<2x4xf32>
  }

  // Per token, no bias (an inline zero bias, as for ref.linear).
  // CHECK-LABEL: func.func @per_token(
  // CHECK:         %[[ZB:.*]] = aten.param constant "zero_bias_4" = dense<0.000000e+00> : tensor<4xf32>
  // CHECK:         %[[S:.*]], %[[Z:.*]] = quant.choose_qparams %x {quantized_type = !quant.any<i8:f32>} : tensor<3x2x8xf32> -> (tensor<3x2x1xf32>, tensor<3x2x1xi64>)
  // CHECK:         ref.dynamic_linear(%{{.*}}, %[[S]], %[[Z]], %{{.*}}, %[[ZB]]) : (tensor<3x2x8x!quant.any<i8:f32>>, tensor<3x2x1xf32>, tensor<3x2x1xi64>, {{.*}}, tensor<4xf32>) -> tensor<3x2x4xf32>
  func.func @per_token(%x: tensor<3x2x8xf32>) -> tensor<3x2x4xf32> {
    %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<i8:f32>} : tensor<3x2x8xf32> -> (tensor<3x2x1xf32>, tensor<3x2x1xi64>)
    %q = quant.dynamic_qcast %x, %s, %z : (tensor<3x2x8xf32>, tensor<3x2x1xf32>, tensor<3x2x1xi64>) -> tensor<3x2x8x!quant.any<i8:f32>>
    %dq = quant.dynamic_dcast %q, %s, %z : (tensor<3x2x8x!quant.any<i8:f32>>, tensor<3x2x1xf32>, tensor<3x2x1xi64>) -> tensor<3x2x8xf32>
    %w = aten.param parameter "w_q" : tensor<4x8x!w>
    %w_dq = quant.dcast %w : tensor<4x8x!w> to tensor<4x8xf32>
    %y = aten.op "linear.default"(%dq, %w_dq) : (tensor<3x2x8xf32>, tensor<4x8xf32>) -> tensor<3x2x4xf32>
    func.return %y : tensor<3x2x4xf32>
  }

  // A float weight (nothing quantized it) leaves the Q/DQ form as it is.
  // CHECK-LABEL: func.func @float_weight(
  // CHECK-NOT:     ref.dynamic_linear
  // CHECK:         aten.op "linear.default"
  func.func @float_weight(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
    %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<u8:f32>} : tensor<2x8xf32> -> (tensor<f32>, tensor<i64>)
    %q = quant.dynamic_qcast %x, %s, %z : (tensor<2x8xf32>, tensor<f32>, tensor<i64>) -> tensor<2x8x!quant.any<u8:f32>>
    %dq = quant.dynamic_dcast %q, %s, %z : (tensor<2x8x!quant.any<u8:f32>>, tensor<f32>, tensor<i64>) -> tensor<2x8xf32>
    %w = aten.param parameter "wf" : tensor<4x8xf32>
    %y = aten.op "linear.default"(%dq, %w) : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
    func.return %y : tensor<2x4xf32>
  }
}
