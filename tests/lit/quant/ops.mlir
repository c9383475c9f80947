// RUN: qir-opt %s | filecheck %s
// RUN: qir-opt %s | qir-opt | filecheck %s

// CHECK-LABEL: func.func @per_tensor(
// CHECK-SAME:    %[[X:.*]]: tensor<2x4xf32>
// CHECK-NEXT:    %[[Q:.*]] = quant.qcast %[[X]] : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32, 5.000000e-02:-3>>
// CHECK-NEXT:    %[[I:.*]] = quant.scast %[[Q]] : tensor<2x4x!quant.uniform<i8:f32, 5.000000e-02:-3>> to tensor<2x4xi8>
// CHECK-NEXT:    %[[Q2:.*]] = quant.scast %[[I]] : tensor<2x4xi8> to tensor<2x4x!quant.uniform<i8:f32, 5.000000e-02:-3>>
// CHECK-NEXT:    %[[Y:.*]] = quant.dcast %[[Q2]] : tensor<2x4x!quant.uniform<i8:f32, 5.000000e-02:-3>> to tensor<2x4xf32>
// CHECK-NEXT:    func.return %[[Y]] : tensor<2x4xf32>
func.func @per_tensor(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %q = quant.qcast %x : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>>
  %i = quant.scast %q : tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>> to tensor<2x4xi8>
  %q2 = quant.scast %i : tensor<2x4xi8> to tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>>
  %y = quant.dcast %q2 : tensor<2x4x!quant.uniform<i8:f32, 0.05:-3>> to tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// Unsigned storage casts to the signless `i8` (as in MLIR) or to `ui8`.
// CHECK-LABEL: func.func @unsigned_storage(
// CHECK:         quant.scast %{{.*}} : tensor<4x!quant.uniform<u8:f32, 1.000000e-01:128>> to tensor<4xi8>
// CHECK:         quant.scast %{{.*}} : tensor<4x!quant.uniform<u8:f32, 1.000000e-01:128>> to tensor<4xui8>
func.func @unsigned_storage(%q: tensor<4x!quant.uniform<u8:f32, 0.1:128>>) -> (tensor<4xi8>, tensor<4xui8>) {
  %a = quant.scast %q : tensor<4x!quant.uniform<u8:f32, 0.1:128>> to tensor<4xi8>
  %b = quant.scast %q : tensor<4x!quant.uniform<u8:f32, 0.1:128>> to tensor<4xui8>
  func.return %a, %b : tensor<4xi8>, tensor<4xui8>
}

// CHECK-LABEL: func.func @scalars(
// CHECK-NEXT:    quant.qcast %{{.*}} : f32 to !quant.uniform<i8:f32, 5.000000e-02:-3>
// CHECK-NEXT:    quant.scast %{{.*}} : !quant.uniform<i8:f32, 5.000000e-02:-3> to i8
// CHECK-NEXT:    quant.dcast %{{.*}} : !quant.uniform<i8:f32, 5.000000e-02:-3> to f32
func.func @scalars(%x: f32) -> (i8, f32) {
  %q = quant.qcast %x : f32 to !quant.uniform<i8:f32, 0.05:-3>
  %i = quant.scast %q : !quant.uniform<i8:f32, 0.05:-3> to i8
  %y = quant.dcast %q : !quant.uniform<i8:f32, 0.05:-3> to f32
  func.return %i, %y : i8, f32
}

// A per-axis type along a dynamic dimension is checked when the size is known.
// CHECK-LABEL: func.func @per_axis(
// CHECK-NEXT:    quant.qcast %{{.*}} : tensor<3x?xf32> to tensor<3x?x!quant.uniform<i8<-127:127>:f32:0, {1.000000e-01,2.000000e-01,3.000000e-01}>>
// CHECK-NEXT:    quant.qcast %{{.*}} : tensor<3x?xf32> to tensor<3x?x!quant.uniform<i8:f32:1, {1.000000e-01,2.000000e-01}>>
func.func @per_axis(%w: tensor<3x?xf32>) {
  %a = quant.qcast %w : tensor<3x?xf32> to tensor<3x?x!quant.uniform<i8<-127:127>:f32:0, {0.1, 0.2, 0.3}>>
  %b = quant.qcast %w : tensor<3x?xf32> to tensor<3x?x!quant.uniform<i8:f32:1, {0.1, 0.2}>>
  func.return
}

// Dynamic quantization: parameters chosen at run time, per tensor or per token (one per row).
// CHECK-LABEL: func.func @dynamic(
// CHECK-NEXT:    %[[S:.*]], %[[Z:.*]] = quant.choose_qparams %[[X:.*]] {quantized_type = !quant.any<u8:f32>} : tensor<?x4xf32> -> (tensor<f32>, tensor<i64>)
// CHECK-NEXT:    %[[Q:.*]] = quant.dynamic_qcast %[[X]], %[[S]], %[[Z]] : (tensor<?x4xf32>, tensor<f32>, tensor<i64>) -> tensor<?x4x!quant.any<u8:f32>>
// CHECK-NEXT:    %{{.*}} = quant.dynamic_dcast %[[Q]], %[[S]], %[[Z]] : (tensor<?x4x!quant.any<u8:f32>>, tensor<f32>, tensor<i64>) -> tensor<?x4xf32>
// CHECK-NEXT:    %{{.*}}, %{{.*}} = quant.choose_qparams %[[X]] {quantized_type = !quant.any<i8:f32>, symmetric} : tensor<?x4xf32> -> (tensor<f32>, tensor<i64>)
// CHECK-NEXT:    %[[TS:.*]], %[[TZ:.*]] = quant.choose_qparams %[[X]] {quantized_type = !quant.any<i8:f32>} : tensor<?x4xf32> -> (tensor<?x1xf32>, tensor<?x1xi64>)
// CHECK-NEXT:    %[[TQ:.*]] = quant.dynamic_qcast %[[X]], %[[TS]], %[[TZ]] : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>) -> tensor<?x4x!quant.any<i8:f32>>
// CHECK-NEXT:    %{{.*}} = quant.scast %[[TQ]] : tensor<?x4x!quant.any<i8:f32>> to tensor<?x4xi8>
// CHECK-NEXT:    %{{.*}}, %{{.*}} = quant.choose_qparams %[[X]] {quantized_type = !quant.any<i8<-127:127>:f32>, symmetric} : tensor<?x4xf32> -> (tensor<?x1xf32>, tensor<?x1xi64>)
func.func @dynamic(%x: tensor<?x4xf32>) {
  %scale, %zp = quant.choose_qparams %x {quantized_type = !quant.any<u8:f32>} : tensor<?x4xf32> -> (tensor<f32>, tensor<i64>)
  %q = quant.dynamic_qcast %x, %scale, %zp : (tensor<?x4xf32>, tensor<f32>, tensor<i64>) -> tensor<?x4x!quant.any<u8:f32>>
  %y = quant.dynamic_dcast %q, %scale, %zp : (tensor<?x4x!quant.any<u8:f32>>, tensor<f32>, tensor<i64>) -> tensor<?x4xf32>
  %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<i8:f32>, symmetric} : tensor<?x4xf32> -> (tensor<f32>, tensor<i64>)
  %ts, %tz = quant.choose_qparams %x {quantized_type = !quant.any<i8:f32>} : tensor<?x4xf32> -> (tensor<?x1xf32>, tensor<?x1xi64>)
  %tq = quant.dynamic_qcast %x, %ts, %tz : (tensor<?x4xf32>, tensor<?x1xf32>, tensor<?x1xi64>) -> tensor<?x4x!quant.any<i8:f32>>
  %ti = quant.scast %tq : tensor<?x4x!quant.any<i8:f32>> to tensor<?x4xi8>
  %ss, %sz = quant.choose_qparams %x {quantized_type = !quant.any<i8<-127:127>:f32>, symmetric} : tensor<?x4xf32> -> (tensor<?x1xf32>, tensor<?x1xi64>)
  func.return
}
