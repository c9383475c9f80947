// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s
// Weights: conv_fp32.safetensors beside this file (random, seeded; lowering reads none of their values).

// A ref.conv to a float result (the X86 recipe leaves a conv float when a float op such as a silu
// reads it): oneDNN's float-output convolution, its weights packed for oneDNN, reading the
// dequantized input (emission passes the quantized tensor's storage itself). A float relu, silu
// or hardswish after a conv2d is the kernel's post op. A float-output conv whose input is a
// float tensor just quantized reads that tensor (conv + silu chains: emission then has the first
// conv leave the second's uint8 input).

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @silu_after(
  // CHECK:         %[[P:.*]] = x86.conv_prepack(%{{.*}}, %{{.*}}) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, engine = "onednn", input_scale = 2.000000e-02 : f64, module = "c"
  // CHECK-NEXT:    %[[D:.*]] = x86.dequantize(%x)
  // CHECK-NEXT:    %[[Y:.*]] = x86.conv2d_fp32(%[[D]], %[[P]]) {input_scale = 2.000000e-02 : f64, input_zero_point = 128 : i64, post = "swish", module = "c"
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @silu_after(%x: tensor<1x3x8x8x!x>) -> tensor<1x4x8x8xf32> {
    %w = aten.param parameter "c.weight_q" : tensor<4x3x3x3x!w>
    %b = aten.param parameter "c.bias" : tensor<4xf32>
    %c = ref.conv(%x, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, module = "c"} : (tensor<1x3x8x8x!x>, tensor<4x3x3x3x!w>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
    %y = aten.op "silu.default"(%c) : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    func.return %y : tensor<1x4x8x8xf32>
  }

  // No post op it fuses: the conv alone, the float op after it.
  // CHECK-LABEL: func.func @gelu_after(
  // CHECK:         %[[Y:.*]] = x86.conv2d_fp32(%{{.*}}, %{{.*}}) {input_scale = 2.000000e-02 : f64, input_zero_point = 128 : i64}
  // CHECK-NEXT:    aten.op "gelu.default"(%[[Y]])
  func.func @gelu_after(%x: tensor<1x3x8x8x!x>) -> tensor<1x4x8x8xf32> {
    %w = aten.param parameter "c.weight_q" : tensor<4x3x3x3x!w>
    %b = aten.param parameter "c.bias" : tensor<4xf32>
    %c = ref.conv(%x, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x3x8x8x!x>, tensor<4x3x3x3x!w>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
    %y = aten.op "gelu.default"(%c) : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    func.return %y : tensor<1x4x8x8xf32>
  }

  // CHECK-LABEL: func.func @silu_chain(
  // CHECK:         %[[A:.*]] = x86.conv2d_fp32(%{{.*}}, %{{.*}}) {input_scale = 2.000000e-02 : f64, input_zero_point = 128 : i64, post = "swish"
  // CHECK-NOT:     x86.quantize
  // CHECK:         %[[B:.*]] = x86.conv2d_fp32(%[[A]], %{{.*}}) {input_scale = 5.000000e-02 : f64, input_zero_point = 10 : i64, post = "swish"
  // CHECK-NEXT:    func.return %[[B]]
  func.func @silu_chain(%x: tensor<1x3x8x8x!x>) -> tensor<1x4x8x8xf32> {
    %w = aten.param parameter "c.weight_q" : tensor<4x3x3x3x!w>
    %b = aten.param parameter "c.bias" : tensor<4xf32>
    %w2 = aten.param parameter "d.weight_q" : tensor<4x4x3x3x!w>
    %b2 = aten.param parameter "d.bias" : tensor<4xf32>
    %c = ref.conv(%x, %w, %b) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x3x8x8x!x>, tensor<4x3x3x3x!w>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
    %s = aten.op "silu.default"(%c) : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    %q = quant.qcast %s : tensor<1x4x8x8xf32> to tensor<1x4x8x8x!quant.uniform<u8:f32, 5.000000e-02:10>>
    %c2 = ref.conv(%q, %w2, %b2) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x4x8x8x!quant.uniform<u8:f32, 5.000000e-02:10>>, tensor<4x4x3x3x!w>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
    %y = aten.op "silu.default"(%c2) : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
    func.return %y : tensor<1x4x8x8xf32>
  }
}
