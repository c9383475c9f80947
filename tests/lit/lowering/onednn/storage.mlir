// RUN: %python %S/../../reference/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p 'lower-onednn{target=x86-avx512-vnni}' | filecheck %s

// What oneDNN has no kernel for becomes the backend's ATen arithmetic on the storage, with
// the ref op's operands, attributes and types. A relu or hardtanh keeping its parameters is a
// clamp of the storage; max-pooling of quantized storage and views of it are rewritten too.

!a = !quant.uniform<u8:f32, 3.000000e-02:120>
!b = !quant.uniform<u8:f32, 2.000000e-02:130>
!y = !quant.uniform<u8:f32, 4.000000e-02:125>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @arith(
  // CHECK:         %[[A:.*]] = onednn.quantize(%x)
  // CHECK:         %[[B:.*]] = onednn.quantize(%z)
  // CHECK-NEXT:    %[[S:.*]] = onednn.add(%[[A]], %[[B]]) {post = "relu"} : (tensor<2x8x!quant.uniform<u8:f32, 3.000000e-02:120>>, tensor<2x8x!quant.uniform<u8:f32, 2.000000e-02:130>>) -> tensor<2x8x!quant.uniform<u8:f32, 4.000000e-02:125>>
  // CHECK-NEXT:    %[[M:.*]] = onednn.mul(%[[S]], %[[B]])
  // CHECK-NEXT:    %[[C:.*]] = onednn.cat(%[[A]], %[[M]]) {dim = 0 : i64}
  // CHECK-NEXT:    %[[R:.*]] = onednn.requantize(%[[C]])
  // CHECK-NEXT:    %[[T:.*]] = aten.op "t.default"(%[[R]])
  // CHECK-NEXT:    %[[MM:.*]] = onednn.matmul(%[[R]], %[[T]]) : ({{.*}}) -> tensor<4x4xf32>
  // CHECK-NEXT:    func.return %[[MM]]
  func.func @arith(%x: tensor<2x8xf32>, %z: tensor<2x8xf32>) -> tensor<4x4xf32> {
    %a = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!a>
    %b = quant.qcast %z : tensor<2x8xf32> to tensor<2x8x!b>
    %s = ref.add(%a, %b) {post = "relu"} : (tensor<2x8x!a>, tensor<2x8x!b>) -> tensor<2x8x!y>
    %m = ref.mul(%s, %b) : (tensor<2x8x!y>, tensor<2x8x!b>) -> tensor<2x8x!a>
    %c = ref.cat(%a, %m) {dim = 0 : i64} : (tensor<2x8x!a>, tensor<2x8x!a>) -> tensor<4x8x!a>
    %r = ref.requantize(%c) : (tensor<4x8x!a>) -> tensor<4x8x!b>
    %same = ref.requantize(%r) : (tensor<4x8x!b>) -> tensor<4x8x!b>
    %t = aten.op "t.default"(%same) : (tensor<4x8x!b>) -> tensor<8x4x!b>
    %mm = ref.matmul(%same, %t) : (tensor<4x8x!b>, tensor<8x4x!b>) -> tensor<4x4xf32>
    func.return %mm : tensor<4x4xf32>
  }

  // CHECK-LABEL: func.func @pools(
  // CHECK:         %[[C:.*]] = onednn.qconv2d_pointwise
  // CHECK-NEXT:    %[[MP:.*]] = onednn.max_pool(%[[C]]) {kernel_size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, ceil_mode = false}
  // CHECK-NEXT:    %[[MP2:.*]] = onednn.max_pool(%[[MP]]) {kernel_size = array<i64: 2, 2>, stride = array<i64: 2, 2>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, ceil_mode = true}
  // CHECK-NEXT:    %[[AP:.*]] = onednn.avg_pool(%[[MP2]]) {kernel_size = array<i64: 2, 2>, stride = array<i64: 1, 1>, padding = array<i64: 0, 0>}
  // CHECK-NEXT:    %[[G:.*]] = onednn.adaptive_avg_pool(%[[AP]]) {output_size = array<i64: 1, 1>}
  // CHECK-NEXT:    %[[V:.*]] = aten.op "reshape.default"(%[[G]], [1, 2])
  // CHECK-NEXT:    %{{.*}} = onednn.dequantize(%[[V]])
  func.func @pools(%x: tensor<1x3x16x16xf32>) -> tensor<1x2xf32> {
    %q = quant.qcast %x : tensor<1x3x16x16xf32> to tensor<1x3x16x16x!a>
    %w = aten.param parameter "w" : tensor<2x3x1x1x!w>
    %bias = aten.param parameter "bias" : tensor<2xf32>
    %c = ref.conv(%q, %w, %bias) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x3x16x16x!a>, tensor<2x3x1x1x!w>, tensor<2xf32>) -> tensor<1x2x16x16x!y>
    %mp = aten.op "max_pool2d.default"(%c, [3, 3], [2, 2], [1, 1]) : (tensor<1x2x16x16x!y>) -> tensor<1x2x8x8x!y>
    %mp2 = aten.op "max_pool2d.default"(%mp, [2, 2], [], 0, 1, true) : (tensor<1x2x8x8x!y>) -> tensor<1x2x4x4x!y>
    %ap = ref.avg_pool(%mp2) {kernel_size = array<i64: 2, 2>, stride = array<i64: 1, 1>, padding = array<i64: 0, 0>} : (tensor<1x2x4x4x!y>) -> tensor<1x2x3x3x!y>
    %g = ref.adaptive_avg_pool(%ap) {output_size = array<i64: 1, 1>} : (tensor<1x2x3x3x!y>) -> tensor<1x2x1x1x!y>
    %v = aten.op "view.default"(%g, [1, 2]) : (tensor<1x2x1x1x!y>) -> tensor<1x2x!y>
    %d = quant.dcast %v : tensor<1x2x!y> to tensor<1x2xf32>
    func.return %d : tensor<1x2xf32>
  }

  // CHECK-LABEL: func.func @lookups(
  // CHECK:         %[[R:.*]] = onednn.clamp(%{{.*}}) {min = 125 : i64, max = 255 : i64}
  // CHECK-NEXT:    %[[H:.*]] = onednn.clamp(%[[R]]) {min = 100 : i64, max = 150 : i64}
  // CHECK-NEXT:    %[[S:.*]] = onednn.lookup(%[[H]]) {fn = "hardswish.default"}
  // CHECK-NEXT:    %[[L:.*]] = onednn.lookup(%[[S]]) {fn = "leaky_relu.default", fn_args = [2.000000e-01 : f64]}
  func.func @lookups(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
    %q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!y>
    %r = ref.lookup(%q) {fn = "relu.default"} : (tensor<2x8x!y>) -> tensor<2x8x!y>
    %h = ref.lookup(%r) {fn = "hardtanh.default", fn_args = [-1.0, 1.0]} : (tensor<2x8x!y>) -> tensor<2x8x!y>
    %s = ref.lookup(%h) {fn = "hardswish.default"} : (tensor<2x8x!y>) -> tensor<2x8x!a>
    %l = ref.lookup(%s) {fn = "leaky_relu.default", fn_args = [0.2]} : (tensor<2x8x!a>) -> tensor<2x8x!a>
    %d = quant.dcast %l : tensor<2x8x!a> to tensor<2x8xf32>
    func.return %d : tensor<2x8xf32>
  }

  // A weight read in float keeps the generic dequantize; so does a quantize to 16 bits.
  // CHECK-LABEL: func.func @generic_casts(
  // CHECK:         quant.dcast %{{.*}} : tensor<2x3x1x1x!quant.uniform<i8:f32:0, {{.*}}>> to tensor<2x3x1x1xf32>
  // CHECK:         quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!quant.uniform<u16:f32, 1.000000e-03>>
  func.func @generic_casts(%x: tensor<2x8xf32>) -> (tensor<2x3x1x1xf32>, tensor<2x8xf32>) {
    %w = aten.param parameter "w" : tensor<2x3x1x1x!w>
    %wd = quant.dcast %w : tensor<2x3x1x1x!w> to tensor<2x3x1x1xf32>
    %q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!quant.uniform<u16:f32, 1.000000e-03>>
    %d = quant.dcast %q : tensor<2x8x!quant.uniform<u16:f32, 1.000000e-03>> to tensor<2x8xf32>
    func.return %wd, %d : tensor<2x3x1x1xf32>, tensor<2x8xf32>
  }
}
