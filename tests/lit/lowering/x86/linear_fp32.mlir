// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s
// Weights: linear_fp32.safetensors beside this file (random, seeded; lowering reads none of their values).

// ref.linear to a float result (a last layer read in float): the int8 kernel that leaves fp32
// (oneDNN's, so its weights are packed for oneDNN), which quantizes its float input itself with
// the input's parameters. Its input is the dequantized activation; when that activation is a
// float tensor just quantized, the kernel reads the float tensor and the quantize/dequantize
// pair goes. A float relu or gelu after it is fused, and so is a float add of a tensor of its
// result's type, in either operand order (a transformer's residual).

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @after_a_kernel(
  // CHECK:         %[[P:.*]] = x86.linear_prepack(%{{.*}}, %{{.*}}) {engine = "onednn", input_scale = 2.000000e-02 : f64, module = "head"}
  // CHECK-NEXT:    %[[D:.*]] = x86.dequantize(%x) {module = "head"} : (tensor<4x8x!quant.uniform<u8:f32, 2.000000e-02:128>>) -> tensor<4x8xf32>
  // CHECK-NEXT:    %[[Y:.*]] = x86.linear_fp32(%[[D]], %[[P]]) {input_scale = 2.000000e-02 : f64, input_zero_point = 128 : i64, module = "head"} : (tensor<4x8xf32>, !x86.packed_linear) -> tensor<4x3xf32>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @after_a_kernel(%x: tensor<4x8x!x>) -> tensor<4x3xf32> {
    %w = aten.param parameter "head.weight_q" : tensor<3x8x!w>
    %b = aten.param parameter "head.bias" : tensor<3xf32>
    %y = ref.linear(%x, %w, %b) {module = "head"} : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    func.return %y : tensor<4x3xf32>
  }

  // CHECK-LABEL: func.func @of_a_float_input(
  // CHECK-NOT:     x86.quantize
  // CHECK:         %[[P:.*]] = x86.linear_prepack(
  // CHECK-NOT:     x86.dequantize
  // CHECK-NEXT:    %[[Y:.*]] = x86.linear_fp32(%f, %[[P]]) {input_scale = 2.000000e-02 : f64, input_zero_point = 128 : i64} : (tensor<4x8xf32>, !x86.packed_linear) -> tensor<4x3xf32>
  // CHECK-NEXT:    func.return %[[Y]]
  func.func @of_a_float_input(%f: tensor<4x8xf32>) -> tensor<4x3xf32> {
    %x = quant.qcast %f : tensor<4x8xf32> to tensor<4x8x!x>
    %w = aten.param parameter "head.weight_q" : tensor<3x8x!w>
    %b = aten.param parameter "head.bias" : tensor<3xf32>
    %y = ref.linear(%x, %w, %b) : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    func.return %y : tensor<4x3xf32>
  }

  // A quantized input read by something else too keeps its quantize for that reader.
  // CHECK-LABEL: func.func @shared_input(
  // CHECK:         %[[Q:.*]] = x86.quantize(%f)
  // CHECK:         %[[D:.*]] = x86.dequantize(%[[Q]])
  // CHECK-NEXT:    %[[Y:.*]] = x86.linear_fp32(%[[D]],
  // CHECK-NEXT:    func.return %[[Y]], %[[Q]]
  func.func @shared_input(%f: tensor<4x8xf32>) -> (tensor<4x3xf32>, tensor<4x8x!x>) {
    %x = quant.qcast %f : tensor<4x8xf32> to tensor<4x8x!x>
    %w = aten.param parameter "head.weight_q" : tensor<3x8x!w>
    %b = aten.param parameter "head.bias" : tensor<3xf32>
    %y = ref.linear(%x, %w, %b) : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    func.return %y, %x : tensor<4x3xf32>, tensor<4x8x!x>
  }

  // CHECK-LABEL: func.func @gelu_after(
  // CHECK:         %[[P:.*]] = x86.linear_prepack(%{{.*}}, %{{.*}}) {engine = "onednn", input_scale = 2.000000e-02 : f64, module = "ffn"
  // CHECK:         %[[Y:.*]] = x86.linear_gelu_fp32(%f, %[[P]]) {input_scale = 2.000000e-02 : f64, input_zero_point = 128 : i64, approximate = "tanh"
  // CHECK-NOT:     aten.op "gelu.default"
  // CHECK:         func.return %[[Y]]
  func.func @gelu_after(%f: tensor<4x8xf32>) -> tensor<4x3xf32> {
    %x = quant.qcast %f : tensor<4x8xf32> to tensor<4x8x!x>
    %w = aten.param parameter "head.weight_q" : tensor<3x8x!w>
    %b = aten.param parameter "head.bias" : tensor<3xf32>
    %l = ref.linear(%x, %w, %b) {module = "ffn"} : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    %y = aten.op "gelu.default"(%l, approximate = "tanh") : (tensor<4x3xf32>) -> tensor<4x3xf32>
    func.return %y : tensor<4x3xf32>
  }

  // CHECK-LABEL: func.func @relu_fused(
  // CHECK:         x86.linear_relu_fp32(%f,
  // CHECK-NOT:     aten.op
  func.func @relu_fused(%f: tensor<4x8xf32>) -> tensor<4x3xf32> {
    %x = quant.qcast %f : tensor<4x8xf32> to tensor<4x8x!x>
    %w = aten.param parameter "head.weight_q" : tensor<3x8x!w>
    %b = aten.param parameter "head.bias" : tensor<3xf32>
    %l = ref.linear(%x, %w, %b) : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    %y = aten.op "relu.default"(%l) : (tensor<4x3xf32>) -> tensor<4x3xf32>
    func.return %y : tensor<4x3xf32>
  }

  // CHECK-LABEL: func.func @residual_add(
  // CHECK:         %[[P:.*]] = x86.linear_prepack(
  // CHECK-NEXT:    %[[Y:.*]] = x86.linear_add_fp32(%f, %[[P]], %r) {input_scale = 2.000000e-02 : f64, input_zero_point = 128 : i64, module = "out"} : (tensor<4x8xf32>, !x86.packed_linear, tensor<4x3xf32>) -> tensor<4x3xf32>
  // CHECK-NOT:     aten.op
  // CHECK:         func.return %[[Y]]
  func.func @residual_add(%f: tensor<4x8xf32>, %r: tensor<4x3xf32>) -> tensor<4x3xf32> {
    %x = quant.qcast %f : tensor<4x8xf32> to tensor<4x8x!x>
    %w = aten.param parameter "head.weight_q" : tensor<3x8x!w>
    %b = aten.param parameter "head.bias" : tensor<3xf32>
    %l = ref.linear(%x, %w, %b) {module = "out"} : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    %y = aten.op "add.Tensor"(%l, %r) : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
    func.return %y : tensor<4x3xf32>
  }

  // CHECK-LABEL: func.func @residual_add_swapped(
  // CHECK:         x86.linear_add_fp32(%[[D:.*]], %{{.*}}, %r)
  // CHECK-NOT:     aten.op
  func.func @residual_add_swapped(%x: tensor<4x8x!x>, %r: tensor<4x3xf32>) -> tensor<4x3xf32> {
    %w = aten.param parameter "head.weight_q" : tensor<3x8x!w>
    %b = aten.param parameter "head.bias" : tensor<3xf32>
    %l = ref.linear(%x, %w, %b) : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    %y = aten.op "add.Tensor"(%r, %l) : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
    func.return %y : tensor<4x3xf32>
  }

  // Not fused: an add with alpha, one that broadcasts, a linear added to itself, a linear read
  // elsewhere too.
  // CHECK-LABEL: func.func @adds_left_alone(
  // CHECK-NOT:     x86.linear_add_fp32
  // CHECK-COUNT-4: aten.op "add.Tensor"
  // CHECK-NOT:     x86.linear_add_fp32
  func.func @adds_left_alone(%x: tensor<4x8x!x>, %r: tensor<4x3xf32>, %row: tensor<3xf32>) -> (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) {
    %w = aten.param parameter "head.weight_q" : tensor<3x8x!w>
    %b = aten.param parameter "head.bias" : tensor<3xf32>
    %l1 = ref.linear(%x, %w, %b) : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    %y1 = aten.op "add.Tensor"(%l1, %r, alpha = 2 : i64) : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
    %l2 = ref.linear(%x, %w, %b) : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    %y2 = aten.op "add.Tensor"(%l2, %row) : (tensor<4x3xf32>, tensor<3xf32>) -> tensor<4x3xf32>
    %l3 = ref.linear(%x, %w, %b) : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    %y3 = aten.op "add.Tensor"(%l3, %l3) : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
    %l4 = ref.linear(%x, %w, %b) : (tensor<4x8x!x>, tensor<3x8x!w>, tensor<3xf32>) -> tensor<4x3xf32>
    %y4 = aten.op "add.Tensor"(%l4, %r) : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32>
    func.return %y1, %y2, %y3, %y4, %l4 : tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>
  }
}
