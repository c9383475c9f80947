// RUN: %python %S/../../reference/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p 'lower-onednn{target=x86-avx512-vnni}' | filecheck %s

// ref.linear becomes oneDNN's qlinear with its post op; a float result stays float32 in the
// kernel. Multi-op chains become one kernel: a gelu or silu between a linear and a quantize
// (with the linear's result quantized, or read in float), a lookup oneDNN has as a post op,
// an add of a float residual, a sum into a quantized residual.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 5.000000e-02:128>
!g = !quant.uniform<u8:f32, 3.000000e-02:10>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03,4.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @linear_relu(
  // CHECK:         %[[P:.*]] = onednn.qlinear_prepack(%{{.*}}) {x_shape = array<i64: 2, 5, 8>} : (tensor<4x8x!quant.uniform<i8:f32:0, {{.*}}>>) -> !onednn.packed_linear
  // CHECK-NEXT:    %{{.*}} = onednn.qlinear_pointwise(%{{.*}}, %[[P]], %{{.*}}) {post = "relu"} : (tensor<2x5x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, !onednn.packed_linear, tensor<4xf32>) -> tensor<2x5x4x!quant.uniform<u8:f32, 5.000000e-02:128>>
  func.func @linear_relu(%x: tensor<2x5x8xf32>) -> tensor<2x5x4xf32> {
    %q = quant.qcast %x : tensor<2x5x8xf32> to tensor<2x5x8x!x>
    %w = aten.param parameter "w" : tensor<4x8x!w>
    %b = aten.param parameter "b" : tensor<4xf32>
    %y = ref.linear(%q, %w, %b) {post = "relu"} : (tensor<2x5x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x5x4x!y>
    %d = quant.dcast %y : tensor<2x5x4x!y> to tensor<2x5x4xf32>
    func.return %d : tensor<2x5x4xf32>
  }

  // A linear read in float: the kernel's output is float32, nothing dequantizes it.
  // CHECK-LABEL: func.func @linear_float(
  // CHECK:         %[[L:.*]] = onednn.qlinear_pointwise(%{{.*}}) : ({{.*}}) -> tensor<?x4xf32>
  // CHECK-NEXT:    func.return %[[L]]
  func.func @linear_float(%x: tensor<?x8xf32>) -> tensor<?x4xf32> {
    %q = quant.qcast %x : tensor<?x8xf32> to tensor<?x8x!x>
    %w = aten.param parameter "w" : tensor<4x8x!w>
    %b = aten.param parameter "b" : tensor<4xf32>
    %y = ref.linear(%q, %w, %b) : (tensor<?x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<?x4xf32>
    func.return %y : tensor<?x4xf32>
  }

  // linear (u8) -> dequantize -> gelu -> quantize: one kernel with the gelu post op, writing the
  // quantize's type; the provenance is the linear's.
  // CHECK-LABEL: func.func @linear_gelu_requantized(
  // CHECK-NOT:     gelu.default
  // CHECK:         %[[G:.*]] = onednn.qlinear_pointwise(%{{.*}}) {post = "gelu", algorithm = "tanh", module = "fc1", module_type = "Linear"} : ({{.*}}) -> tensor<2x4x!quant.uniform<u8:f32, 3.000000e-02:10>>
  // CHECK:         onednn.qlinear_pointwise(%[[G]]
  func.func @linear_gelu_requantized(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
    %q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!x>
    %w = aten.param parameter "w" : tensor<4x8x!w>
    %b = aten.param parameter "b" : tensor<4xf32>
    %l = ref.linear(%q, %w, %b) {module = "fc1", module_type = "Linear"} : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4x!y>
    %ld = quant.dcast %l : tensor<2x4x!y> to tensor<2x4xf32>
    %g = aten.op "gelu.default"(%ld, approximate = "tanh") {module = "act", module_type = "GELU"} : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %gq = quant.qcast %g : tensor<2x4xf32> to tensor<2x4x!g>
    %w2 = aten.param parameter "w2" : tensor<4x4x!w>
    %y = ref.linear(%gq, %w2, %b) : (tensor<2x4x!g>, tensor<4x4x!w>, tensor<4xf32>) -> tensor<2x4xf32>
    func.return %y : tensor<2x4xf32>
  }

  // The linear's result left in float (what the derived quantizer does): gelu -> quantize.
  // CHECK-LABEL: func.func @linear_gelu_of_float(
  // CHECK-NOT:     gelu.default
  // CHECK:         onednn.qlinear_pointwise(%{{.*}}) {post = "gelu", algorithm = "none"} : ({{.*}}) -> tensor<2x4x!quant.uniform<u8:f32, 3.000000e-02:10>>
  func.func @linear_gelu_of_float(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
    %q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!x>
    %w = aten.param parameter "w" : tensor<4x8x!w>
    %b = aten.param parameter "b" : tensor<4xf32>
    %l = ref.linear(%q, %w, %b) : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4xf32>
    %g = aten.op "gelu.default"(%l) : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %gq = quant.qcast %g : tensor<2x4xf32> to tensor<2x4x!g>
    %gd = quant.dcast %gq : tensor<2x4x!g> to tensor<2x4xf32>
    func.return %gd : tensor<2x4xf32>
  }

  // Read in float after the gelu, and a silu read in float too: float32 kernels with the post op.
  // CHECK-LABEL: func.func @linear_gelu_silu_float(
  // CHECK:         onednn.qlinear_pointwise(%{{.*}}) {post = "gelu", algorithm = "none"} : ({{.*}}) -> tensor<2x4xf32>
  // CHECK:         onednn.qlinear_pointwise(%{{.*}}) {post = "swish"} : ({{.*}}) -> tensor<2x4xf32>
  // CHECK-NOT:     aten.op
  func.func @linear_gelu_silu_float(%x: tensor<2x8xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
    %q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!x>
    %w = aten.param parameter "w" : tensor<4x8x!w>
    %b = aten.param parameter "b" : tensor<4xf32>
    %l = ref.linear(%q, %w, %b) : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4xf32>
    %g = aten.op "gelu.default"(%l) : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %l2 = ref.linear(%q, %w, %b) : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4xf32>
    %s = aten.op "silu.default"(%l2) : (tensor<2x4xf32>) -> tensor<2x4xf32>
    func.return %g, %s : tensor<2x4xf32>, tensor<2x4xf32>
  }

  // A gelu whose input is read elsewhere too cannot be fused: the linear keeps its own kernel.
  // CHECK-LABEL: func.func @linear_gelu_shared(
  // CHECK:         %[[L:.*]] = onednn.qlinear_pointwise(%{{.*}}) : ({{.*}}) -> tensor<2x4xf32>
  // CHECK-NEXT:    aten.op "gelu.default"(%[[L]])
  func.func @linear_gelu_shared(%x: tensor<2x8xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
    %q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!x>
    %w = aten.param parameter "w" : tensor<4x8x!w>
    %b = aten.param parameter "b" : tensor<4xf32>
    %l = ref.linear(%q, %w, %b) : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4xf32>
    %g = aten.op "gelu.default"(%l) : (tensor<2x4xf32>) -> tensor<2x4xf32>
    func.return %g, %l : tensor<2x4xf32>, tensor<2x4xf32>
  }

  // Lookups oneDNN has as post ops (tanh here); sigmoid it has not: a table after the kernel.
  // CHECK-LABEL: func.func @linear_lookups(
  // CHECK:         onednn.qlinear_pointwise(%{{.*}}) {post = "tanh"} : ({{.*}}) -> tensor<2x4x!quant.uniform<u8:f32, 7.812500e-03:128>>
  // CHECK:         %[[L:.*]] = onednn.qlinear_pointwise(%{{.*}}) : ({{.*}}) -> tensor<2x4x!quant.uniform<u8:f32, 5.000000e-02:128>>
  // CHECK-NEXT:    onednn.lookup(%[[L]]) {fn = "sigmoid.default"}
  func.func @linear_lookups(%x: tensor<2x8xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
    %q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!x>
    %w = aten.param parameter "w" : tensor<4x8x!w>
    %b = aten.param parameter "b" : tensor<4xf32>
    %l = ref.linear(%q, %w, %b) : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4x!y>
    %t = ref.lookup(%l) {fn = "tanh.default"} : (tensor<2x4x!y>) -> tensor<2x4x!quant.uniform<u8:f32, 7.812500e-03:128>>
    %td = quant.dcast %t : tensor<2x4x!quant.uniform<u8:f32, 7.812500e-03:128>> to tensor<2x4xf32>
    %l2 = ref.linear(%q, %w, %b) : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4x!y>
    %s = ref.lookup(%l2) {fn = "sigmoid.default"} : (tensor<2x4x!y>) -> tensor<2x4x!quant.uniform<u8:f32, 3.906250e-03>>
    %sd = quant.dcast %s : tensor<2x4x!quant.uniform<u8:f32, 3.906250e-03>> to tensor<2x4xf32>
    func.return %td, %sd : tensor<2x4xf32>, tensor<2x4xf32>
  }

  // A float linear plus a float residual (either side): the add is the kernel's binary post op.
  // CHECK-LABEL: func.func @linear_add(
  // CHECK:         %[[A:.*]] = onednn.qlinear_pointwise_binary(%{{.*}}, %{{.*}}, %{{.*}}, %r) {binary = "add"} : ({{.*}}, tensor<2x4xf32>) -> tensor<2x4xf32>
  // CHECK:         onednn.qlinear_pointwise_binary(%{{.*}}, %{{.*}}, %{{.*}}, %[[A]]) {binary = "add"}
  // CHECK-NOT:     add.Tensor
  func.func @linear_add(%x: tensor<2x8xf32>, %r: tensor<2x4xf32>) -> tensor<2x4xf32> {
    %q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!x>
    %w = aten.param parameter "w" : tensor<4x8x!w>
    %b = aten.param parameter "b" : tensor<4xf32>
    %l = ref.linear(%q, %w, %b) : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4xf32>
    %a = aten.op "add.Tensor"(%l, %r) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %l2 = ref.linear(%q, %w, %b) : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4xf32>
    %a2 = aten.op "add.Tensor"(%a, %l2) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    func.return %a2 : tensor<2x4xf32>
  }

  // A quantized linear whose only reader adds it to a quantized residual: the sum post op.
  // CHECK-LABEL: func.func @linear_sum(
  // CHECK:         %[[R:.*]] = onednn.quantize(%r)
  // CHECK:         onednn.qlinear_pointwise_binary(%{{.*}}, %{{.*}}, %{{.*}}, %[[R]]) {binary = "sum", post = "relu"} : ({{.*}}) -> tensor<2x4x!quant.uniform<u8:f32, 3.000000e-02:10>>
  // CHECK-NOT:     onednn.add
  func.func @linear_sum(%x: tensor<2x8xf32>, %r: tensor<2x4xf32>) -> tensor<2x4xf32> {
    %q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!x>
    %rq = quant.qcast %r : tensor<2x4xf32> to tensor<2x4x!y>
    %w = aten.param parameter "w" : tensor<4x8x!w>
    %b = aten.param parameter "b" : tensor<4xf32>
    %l = ref.linear(%q, %w, %b) : (tensor<2x8x!x>, tensor<4x8x!w>, tensor<4xf32>) -> tensor<2x4x!y>
    %s = ref.add(%rq, %l) {post = "relu"} : (tensor<2x4x!y>, tensor<2x4x!y>) -> tensor<2x4x!g>
    %d = quant.dcast %s : tensor<2x4x!g> to tensor<2x4xf32>
    func.return %d : tensor<2x4xf32>
  }
}
