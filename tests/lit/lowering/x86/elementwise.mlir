// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s

// The kernels on quantized tensors other than convs and linears. ref.add / ref.mul (relu fused
// or not) and ref.matmul: two quantized tensors, broadcasting. ref.cat, the pools and
// ref.requantize: requantizing to the result type (pool attributes carry over, absent ones stay
// absent). ref.lookup: torch's kernel where it has one that keeps (relu, hardtanh as a clamp)
// or sets (hardswish) the parameters the IR says; any other function, or a relu that changes
// the parameters, a table over the storage (x86.lookup, as the ref op defines it).

!a = !quant.uniform<u8:f32, 2.000000e-02:128>
!b = !quant.uniform<u8:f32, 5.000000e-02:3>
!y = !quant.uniform<u8:f32, 1.000000e-01:100>
!u = !quant.uniform<u8:f32, 1.000000e-02>
!s = !quant.uniform<u8:f32, 3.906250e-03>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @binary(
  // CHECK-NEXT:    %[[S:.*]] = x86.add(%a, %g) {module = "res"} : (tensor<2x3x4x4x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<2x3x1x1x!quant.uniform<u8:f32, 5.000000e-02:3>>) -> tensor<2x3x4x4x!quant.uniform<u8:f32, 1.000000e-01:100>>
  // CHECK-NEXT:    %[[R:.*]] = x86.add_relu(%[[S]], %a) : ({{.*}}) -> tensor<2x3x4x4x!quant.uniform<u8:f32, 1.000000e-01:100>>
  // CHECK-NEXT:    %[[M:.*]] = x86.mul(%[[R]], %g) : ({{.*}}) -> tensor<2x3x4x4x!quant.uniform<u8:f32, 1.000000e-01:100>>
  // CHECK-NEXT:    %[[N:.*]] = x86.mul_relu(%[[M]], %[[M]]) : ({{.*}}) -> tensor<2x3x4x4x!quant.uniform<u8:f32, 1.000000e-01:100>>
  // CHECK-NEXT:    func.return %[[N]]
  func.func @binary(%a: tensor<2x3x4x4x!a>, %g: tensor<2x3x1x1x!b>) -> tensor<2x3x4x4x!y> {
    %s = ref.add(%a, %g) {module = "res"} : (tensor<2x3x4x4x!a>, tensor<2x3x1x1x!b>) -> tensor<2x3x4x4x!y>
    %r = ref.add(%s, %a) {post = "relu"} : (tensor<2x3x4x4x!y>, tensor<2x3x4x4x!a>) -> tensor<2x3x4x4x!y>
    %m = ref.mul(%r, %g) : (tensor<2x3x4x4x!y>, tensor<2x3x1x1x!b>) -> tensor<2x3x4x4x!y>
    %n = ref.mul(%m, %m) {post = "relu"} : (tensor<2x3x4x4x!y>, tensor<2x3x4x4x!y>) -> tensor<2x3x4x4x!y>
    func.return %n : tensor<2x3x4x4x!y>
  }

  // CHECK-LABEL: func.func @matmul(
  // CHECK-NEXT:    %[[M:.*]] = x86.matmul(%a, %b) : (tensor<2x3x4x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<2x4x5x!quant.uniform<u8:f32, 5.000000e-02:3>>) -> tensor<2x3x5x!quant.uniform<u8:f32, 1.000000e-01:100>>
  // CHECK-NEXT:    func.return %[[M]]
  func.func @matmul(%a: tensor<2x3x4x!a>, %b: tensor<2x4x5x!b>) -> tensor<2x3x5x!y> {
    %m = ref.matmul(%a, %b) : (tensor<2x3x4x!a>, tensor<2x4x5x!b>) -> tensor<2x3x5x!y>
    func.return %m : tensor<2x3x5x!y>
  }

  // CHECK-LABEL: func.func @cat_requantize(
  // CHECK-NEXT:    %[[C:.*]] = x86.cat(%a, %b, %a) {dim = 1 : i64} : (tensor<2x3x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<2x4x!quant.uniform<u8:f32, 5.000000e-02:3>>, tensor<2x3x!quant.uniform<u8:f32, 2.000000e-02:128>>) -> tensor<2x10x!quant.uniform<u8:f32, 1.000000e-01:100>>
  // CHECK-NEXT:    %[[R:.*]] = x86.requantize(%[[C]]) : (tensor<2x10x!quant.uniform<u8:f32, 1.000000e-01:100>>) -> tensor<2x10x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    func.return %[[R]]
  func.func @cat_requantize(%a: tensor<2x3x!a>, %b: tensor<2x4x!b>) -> tensor<2x10x!a> {
    %c = ref.cat(%a, %b, %a) {dim = 1 : i64} : (tensor<2x3x!a>, tensor<2x4x!b>, tensor<2x3x!a>) -> tensor<2x10x!y>
    %r = ref.requantize(%c) : (tensor<2x10x!y>) -> tensor<2x10x!a>
    func.return %r : tensor<2x10x!a>
  }

  // CHECK-LABEL: func.func @pools(
  // CHECK-NEXT:    %[[P:.*]] = x86.avg_pool(%x) {kernel_size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, ceil_mode = true, count_include_pad = false} : (tensor<1x2x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>) -> tensor<1x2x5x5x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    %[[Q:.*]] = x86.avg_pool(%x) {kernel_size = array<i64: 2, 2>, stride = array<i64: 2, 2>, padding = array<i64: 0, 0>, divisor_override = 3 : i64} : ({{.*}}) -> tensor<1x2x4x4x!quant.uniform<u8:f32, 1.000000e-01:100>>
  // CHECK-NEXT:    %[[A:.*]] = x86.adaptive_avg_pool(%x) {output_size = array<i64: 1, 1>} : ({{.*}}) -> tensor<1x2x1x1x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    func.return %[[P]], %[[Q]], %[[A]]
  func.func @pools(%x: tensor<1x2x8x8x!a>) -> (tensor<1x2x5x5x!a>, tensor<1x2x4x4x!y>, tensor<1x2x1x1x!a>) {
    %p = ref.avg_pool(%x) {kernel_size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, ceil_mode = true, count_include_pad = false} : (tensor<1x2x8x8x!a>) -> tensor<1x2x5x5x!a>
    %q = ref.avg_pool(%x) {kernel_size = array<i64: 2, 2>, stride = array<i64: 2, 2>, padding = array<i64: 0, 0>, divisor_override = 3 : i64} : (tensor<1x2x8x8x!a>) -> tensor<1x2x4x4x!y>
    %a = ref.adaptive_avg_pool(%x) {output_size = array<i64: 1, 1>} : (tensor<1x2x8x8x!a>) -> tensor<1x2x1x1x!a>
    func.return %p, %q, %a : tensor<1x2x5x5x!a>, tensor<1x2x4x4x!y>, tensor<1x2x1x1x!a>
  }

  // CHECK-LABEL: func.func @lookups(
  // CHECK-NEXT:    %[[R:.*]] = x86.relu(%x) : (tensor<4x8x!quant.uniform<u8:f32, 2.000000e-02:128>>) -> tensor<4x8x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    %[[H:.*]] = x86.clamp(%[[R]]) {min = -5.000000e-01 : f64, max = 1.000000e+00 : f64} : ({{.*}}) -> tensor<4x8x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    %[[D:.*]] = x86.clamp(%[[H]]) {min = -1.000000e+00 : f64, max = 1.000000e+00 : f64}
  // CHECK-NEXT:    %[[W:.*]] = x86.hardswish(%[[D]]) : ({{.*}}) -> tensor<4x8x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NEXT:    %[[S:.*]] = x86.lookup(%[[W]]) {fn = "sigmoid.default"} : ({{.*}}) -> tensor<4x8x!quant.uniform<u8:f32, 3.906250e-03>>
  // CHECK-NEXT:    %[[G:.*]] = x86.lookup(%[[S]]) {fn = "gelu.default", fn_args = ["tanh"]}
  // CHECK-NEXT:    %[[T:.*]] = x86.lookup(%x) {fn = "relu.default"} : (tensor<4x8x!quant.uniform<u8:f32, 2.000000e-02:128>>) -> tensor<4x8x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NEXT:    func.return %[[G]], %[[T]]
  func.func @lookups(%x: tensor<4x8x!a>) -> (tensor<4x8x!s>, tensor<4x8x!u>) {
    %r = ref.lookup(%x) {fn = "relu.default"} : (tensor<4x8x!a>) -> tensor<4x8x!a>
    %h = ref.lookup(%r) {fn = "hardtanh.default", fn_args = [-0.5, 1.0]} : (tensor<4x8x!a>) -> tensor<4x8x!a>
    %d = ref.lookup(%h) {fn = "hardtanh.default"} : (tensor<4x8x!a>) -> tensor<4x8x!a>
    %w = ref.lookup(%d) {fn = "hardswish.default"} : (tensor<4x8x!a>) -> tensor<4x8x!u>
    %s = ref.lookup(%w) {fn = "sigmoid.default"} : (tensor<4x8x!u>) -> tensor<4x8x!s>
    %g = ref.lookup(%s) {fn = "gelu.default", fn_args = ["tanh"]} : (tensor<4x8x!s>) -> tensor<4x8x!s>
    %t = ref.lookup(%x) {fn = "relu.default"} : (tensor<4x8x!a>) -> tensor<4x8x!u>
    func.return %g, %t : tensor<4x8x!s>, tensor<4x8x!u>
  }
}
