// RUN: qir-opt %s -p convert | filecheck %s

// An observer of a dynamic spec has no statistics (calibration never fills them): convert
// writes the run-time form, the spec's storage range and scheme in the !quant.any and the
// choose_qparams. A static observer next to it converts as before.

builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<2x3xf32>, %y: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
    %a = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:127], affine, minmax, dynamic, group 0>} : tensor<2x3xf32>
    %b = obs.observe %x {id = "obs1", spec = #obs.spec<i8[-128:127], symmetric, minmax, dynamic, group 1>} : tensor<2x3xf32>
    %c = obs.observe %y {id = "obs2", spec = #obs.spec<u8[0:255], affine, minmax, group 2>, stats = {min = -1.0 : f64, max = 3.0 : f64}} : tensor<2x3xf32>
    func.return %a, %b, %c : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>
  }
}

// CHECK:      builtin.module attributes {qir.stage = "quantized"}
// CHECK:      %[[S:.*]], %[[Z:.*]] = quant.choose_qparams %x {quantized_type = !quant.any<u8<0:127>:f32>} : tensor<2x3xf32> -> (tensor<f32>, tensor<i64>)
// CHECK-NEXT: %[[Q:.*]] = quant.dynamic_qcast %x, %[[S]], %[[Z]] : (tensor<2x3xf32>, tensor<f32>, tensor<i64>) -> tensor<2x3x!quant.any<u8<0:127>:f32>>
// CHECK-NEXT: %[[A:.*]] = quant.dynamic_dcast %[[Q]], %[[S]], %[[Z]] : (tensor<2x3x!quant.any<u8<0:127>:f32>>, tensor<f32>, tensor<i64>) -> tensor<2x3xf32>
// CHECK-NEXT: %[[S2:.*]], %[[Z2:.*]] = quant.choose_qparams %x {quantized_type = !quant.any<i8:f32>, symmetric} : tensor<2x3xf32> -> (tensor<f32>, tensor<i64>)
// CHECK-NEXT: %[[Q2:.*]] = quant.dynamic_qcast %x, %[[S2]], %[[Z2]]
// CHECK-NEXT: %[[B:.*]] = quant.dynamic_dcast %[[Q2]], %[[S2]], %[[Z2]]
// CHECK-NEXT: %[[Q3:.*]] = quant.qcast %y : tensor<2x3xf32> to tensor<2x3x!quant.uniform<u8:f32, 1.568627{{[0-9]*}}e-02:64>>
// CHECK-NEXT: %[[C:.*]] = quant.dcast %[[Q3]]
// CHECK-NEXT: func.return %[[A]], %[[B]], %[[C]]
