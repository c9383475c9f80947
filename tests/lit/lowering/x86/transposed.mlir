// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s
// Weights: transposed.safetensors beside this file (random, seeded; lowering reads none of their values).

// Transposed ref.conv: one kernel per spatial rank, output_padding kept, weights packed for
// fbgemm (oneDNN's transposed kernels are wrong without padding in torch 2.13). There is no
// fused relu kernel: the conv, then a relu of the quantized tensor. x86 runs transposed convs
// with per-tensor weights only (its capability table), `[in, out / groups, k...]`.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02>
!w = !quant.uniform<i8:f32, 3.000000e-03>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @upsample(
  // CHECK:         %[[P:.*]] = x86.conv_prepack(%{{.*}}, %{{.*}}) {stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, transposed = true, output_padding = array<i64: 1, 1>, engine = "fbgemm", input_scale = 2.000000e-02 : f64, module = "up"}
  // CHECK-NEXT:    %[[T:.*]] = x86.conv_transpose2d(%x, %[[P]]) {module = "up"} : (tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, !x86.packed_conv) -> tensor<1x4x16x16x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NEXT:    func.return %[[T]]
  func.func @upsample(%x: tensor<1x3x8x8x!x>) -> tensor<1x4x16x16x!y> {
    %w = aten.param parameter "up.weight_q" : tensor<3x4x3x3x!w>
    %b = aten.param parameter "up.bias" : tensor<4xf32>
    %t = ref.conv(%x, %w, %b) {stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, transposed = true, output_padding = array<i64: 1, 1>, module = "up"} : (tensor<1x3x8x8x!x>, tensor<3x4x3x3x!w>, tensor<4xf32>) -> tensor<1x4x16x16x!y>
    func.return %t : tensor<1x4x16x16x!y>
  }

  // 1-D and 3-D, without output_padding (the prepack leaves it out); a relu after.
  // CHECK-LABEL: func.func @ranks_and_relu(
  // CHECK:         %[[P1:.*]] = x86.conv_prepack({{.*}}) {stride = array<i64: 2>, padding = array<i64: 0>, dilation = array<i64: 1>, groups = 1 : i64, transposed = true, engine = "fbgemm", input_scale = 2.000000e-02 : f64}
  // CHECK-NEXT:    %[[T1:.*]] = x86.conv_transpose1d(%x1, %[[P1]])
  // CHECK-NEXT:    %[[R1:.*]] = x86.relu(%[[T1]]) : (tensor<1x4x17x!quant.uniform<u8:f32, 1.000000e-02>>) -> tensor<1x4x17x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK:         %[[P3:.*]] = x86.conv_prepack({{.*}}) {stride = array<i64: 1, 1, 1>, {{.*}}transposed = true, engine = "fbgemm"
  // CHECK-NEXT:    %[[T3:.*]] = x86.conv_transpose3d(%x3, %[[P3]])
  // CHECK-NEXT:    func.return %[[R1]], %[[T3]]
  // CHECK-NOT:     ref.conv
  func.func @ranks_and_relu(%x1: tensor<1x3x8x!x>, %x3: tensor<1x3x4x4x4x!x>) -> (tensor<1x4x17x!y>, tensor<1x4x6x6x6x!y>) {
    %w1 = aten.param parameter "up1.weight_q" : tensor<3x4x3x!w>
    %b1 = aten.param parameter "up1.bias" : tensor<4xf32>
    %t1 = ref.conv(%x1, %w1, %b1) {stride = array<i64: 2>, padding = array<i64: 0>, dilation = array<i64: 1>, groups = 1 : i64, transposed = true, post = "relu"} : (tensor<1x3x8x!x>, tensor<3x4x3x!w>, tensor<4xf32>) -> tensor<1x4x17x!y>
    %w3 = aten.param parameter "up3.weight_q" : tensor<3x4x3x3x3x!w>
    %b3 = aten.param parameter "up3.bias" : tensor<4xf32>
    %t3 = ref.conv(%x3, %w3, %b3) {stride = array<i64: 1, 1, 1>, padding = array<i64: 0, 0, 0>, dilation = array<i64: 1, 1, 1>, groups = 1 : i64, transposed = true} : (tensor<1x3x4x4x4x!x>, tensor<3x4x3x3x3x!w>, tensor<4xf32>) -> tensor<1x4x6x6x6x!y>
    func.return %t1, %t3 : tensor<1x4x17x!y>, tensor<1x4x6x6x6x!y>
  }
}
