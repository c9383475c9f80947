// RUN: %python %S/../../reference/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p 'lower-onednn{target=x86-avx512-vnni}' | filecheck %s

// ref.conv_add (+ relu) is oneDNN's conv2d with the sum post op, summed into the addend's
// buffer: the addend must have the result's storage. One of int8 storage for a uint8 result
// cannot be summed into (the table refuses it; handed to lower-onednn directly, it stays the
// reference emulation).

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!a = !quant.uniform<u8:f32, 5.000000e-02:10>
!ai = !quant.uniform<i8:f32, 5.000000e-02:10>
!y = !quant.uniform<u8:f32, 4.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @conv_add_relu(
  // CHECK:         %[[X:.*]] = onednn.quantize(%x)
  // CHECK:         %[[A:.*]] = onednn.quantize(%a)
  // CHECK:         %[[P:.*]] = onednn.qconv_prepack(%{{.*}}) {x_scale = 2.000000e-02 : f64, x_zero_point = 128 : i64, stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, x_shape = array<i64: 1, 2, 6, 6>}
  // CHECK-NEXT:    %[[Y:.*]] = onednn.qconv2d_pointwise_sum(%[[X]], %[[P]], %{{.*}}, %[[A]]) {post = "relu"} : (tensor<1x2x6x6x!quant.uniform<u8:f32, 2.000000e-02:128>>, !onednn.packed_conv, tensor<2xf32>, tensor<1x2x6x6x!quant.uniform<u8:f32, 5.000000e-02:10>>) -> tensor<1x2x6x6x!quant.uniform<u8:f32, 4.000000e-02>>
  func.func @conv_add_relu(%x: tensor<1x2x6x6xf32>, %a: tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32> {
    %xq = quant.qcast %x : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!x>
    %aq = quant.qcast %a : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!a>
    %w = aten.param parameter "w" : tensor<2x2x3x3x!w>
    %b = aten.param parameter "b" : tensor<2xf32>
    %y = ref.conv_add(%xq, %w, %b, %aq) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "relu"} : (tensor<1x2x6x6x!x>, tensor<2x2x3x3x!w>, tensor<2xf32>, tensor<1x2x6x6x!a>) -> tensor<1x2x6x6x!y>
    %d = quant.dcast %y : tensor<1x2x6x6x!y> to tensor<1x2x6x6xf32>
    func.return %d : tensor<1x2x6x6xf32>
  }

  // The kernel fuses relu only: a hardtanh after the sum is a clamp of its storage.
  // CHECK-LABEL: func.func @conv_add_hardtanh(
  // CHECK:         %[[S:.*]] = onednn.qconv2d_pointwise_sum(%{{.*}}) : ({{.*}}) -> tensor<1x2x6x6x!quant.uniform<u8:f32, 4.000000e-02>>
  // CHECK-NEXT:    onednn.clamp(%[[S]]) {min = 0 : i64, max = 150 : i64}
  func.func @conv_add_hardtanh(%x: tensor<1x2x6x6xf32>, %a: tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32> {
    %xq = quant.qcast %x : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!x>
    %aq = quant.qcast %a : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!a>
    %w = aten.param parameter "w" : tensor<2x2x3x3x!w>
    %b = aten.param parameter "b" : tensor<2xf32>
    %y = ref.conv_add(%xq, %w, %b, %aq) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "hardtanh", post_args = array<f64: 0.0, 6.0>} : (tensor<1x2x6x6x!x>, tensor<2x2x3x3x!w>, tensor<2xf32>, tensor<1x2x6x6x!a>) -> tensor<1x2x6x6x!y>
    %d = quant.dcast %y : tensor<1x2x6x6x!y> to tensor<1x2x6x6xf32>
    func.return %d : tensor<1x2x6x6xf32>
  }

  // CHECK-LABEL: func.func @int8_addend(
  // CHECK-NOT:     onednn.qconv2d_pointwise_sum
  // CHECK:         ref.conv_add
  func.func @int8_addend(%x: tensor<1x2x6x6xf32>, %a: tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32> {
    %xq = quant.qcast %x : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!x>
    %aq = quant.qcast %a : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!ai>
    %w = aten.param parameter "w" : tensor<2x2x3x3x!w>
    %b = aten.param parameter "b" : tensor<2xf32>
    %y = ref.conv_add(%xq, %w, %b, %aq) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x6x6x!x>, tensor<2x2x3x3x!w>, tensor<2xf32>, tensor<1x2x6x6x!ai>) -> tensor<1x2x6x6x!y>
    %d = quant.dcast %y : tensor<1x2x6x6x!y> to tensor<1x2x6x6xf32>
    func.return %d : tensor<1x2x6x6xf32>
  }
}
