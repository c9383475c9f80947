// RUN: qir-opt %s -p reference-rewrite | filecheck %s

// cat of dequantized tensors + quantize → ref.cat (inputs of other parameters requantized by
// its definition); avg_pool and adaptive_avg_pool + quantize → ref.avg_pool (attributes made
// explicit, stride defaulting to the kernel) and ref.adaptive_avg_pool.

!a = !quant.uniform<u8:f32, 2.000000e-02:128>
!b = !quant.uniform<u8:f32, 3.000000e-02:3>

builtin.module attributes {qir.stage = "quantized"} {
  // CHECK-LABEL: func.func @cat(
  // CHECK-NEXT:    %[[A:.*]] = quant.qcast %a
  // CHECK-NEXT:    %[[B:.*]] = quant.qcast %b
  // CHECK-NEXT:    %[[C:.*]] = ref.cat(%[[A]], %[[B]], %[[A]]) {dim = -1 : i64} : (tensor<2x3x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<2x5x!quant.uniform<u8:f32, 3.000000e-02:3>>, tensor<2x3x!quant.uniform<u8:f32, 2.000000e-02:128>>) -> tensor<2x11x!quant.uniform<u8:f32, 3.000000e-02:3>>
  func.func @cat(%a: tensor<2x3xf32>, %b: tensor<2x5xf32>) -> tensor<2x11xf32> {
    %a_q = quant.qcast %a : tensor<2x3xf32> to tensor<2x3x!a>
    %b_q = quant.qcast %b : tensor<2x5xf32> to tensor<2x5x!b>
    %a_dq = quant.dcast %a_q : tensor<2x3x!a> to tensor<2x3xf32>
    %b_dq = quant.dcast %b_q : tensor<2x5x!b> to tensor<2x5xf32>
    %c = aten.op "cat.default"([%a_dq, %b_dq, %a_dq], -1) : (tensor<2x3xf32>, tensor<2x5xf32>, tensor<2x3xf32>) -> tensor<2x11xf32>
    %c_q = quant.qcast %c : tensor<2x11xf32> to tensor<2x11x!b>
    %c_dq = quant.dcast %c_q : tensor<2x11x!b> to tensor<2x11xf32>
    func.return %c_dq : tensor<2x11xf32>
  }

  // CHECK-LABEL: func.func @pools(
  // CHECK:         %[[P:.*]] = ref.avg_pool(%{{.*}}) {kernel_size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, ceil_mode = true, count_include_pad = false} : (tensor<1x2x9x9x!quant.uniform<u8:f32, 2.000000e-02:128>>) -> tensor<1x2x5x5x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    %[[Q:.*]] = ref.avg_pool(%[[P]]) {kernel_size = array<i64: 2, 2>, stride = array<i64: 2, 2>, padding = array<i64: 0, 0>, ceil_mode = false, count_include_pad = true, divisor_override = 3 : i64}
  // CHECK:         %[[R:.*]] = ref.adaptive_avg_pool(%[[P]]) {output_size = array<i64: 3, 2>} : ({{.*}}) -> tensor<1x2x3x2x!quant.uniform<u8:f32, 3.000000e-02:3>>
  // CHECK:         %[[S:.*]] = ref.avg_pool(%{{.*}}) {kernel_size = array<i64: 4>, stride = array<i64: 4>, padding = array<i64: 0>, ceil_mode = false, count_include_pad = true} : (tensor<1x2x9x!quant.uniform
  func.func @pools(%x: tensor<1x2x9x9xf32>, %s: tensor<1x2x9xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x3x2xf32>, tensor<1x2x2xf32>) {
    %x_q = quant.qcast %x : tensor<1x2x9x9xf32> to tensor<1x2x9x9x!a>
    %x_dq = quant.dcast %x_q : tensor<1x2x9x9x!a> to tensor<1x2x9x9xf32>
    %p = aten.op "avg_pool2d.default"(%x_dq, [3, 3], [2, 2], [1, 1], true, false) : (tensor<1x2x9x9xf32>) -> tensor<1x2x5x5xf32>
    %p_q = quant.qcast %p : tensor<1x2x5x5xf32> to tensor<1x2x5x5x!a>
    %p_dq = quant.dcast %p_q : tensor<1x2x5x5x!a> to tensor<1x2x5x5xf32>
    %q = aten.op "avg_pool2d.default"(%p_dq, [2, 2], [], 0, false, true, 3) : (tensor<1x2x5x5xf32>) -> tensor<1x2x2x2xf32>
    %q_q = quant.qcast %q : tensor<1x2x2x2xf32> to tensor<1x2x2x2x!a>
    %q_dq = quant.dcast %q_q : tensor<1x2x2x2x!a> to tensor<1x2x2x2xf32>
    %r = aten.op "adaptive_avg_pool2d.default"(%p_dq, [3, 2]) : (tensor<1x2x5x5xf32>) -> tensor<1x2x3x2xf32>
    %r_q = quant.qcast %r : tensor<1x2x3x2xf32> to tensor<1x2x3x2x!b>
    %r_dq = quant.dcast %r_q : tensor<1x2x3x2x!b> to tensor<1x2x3x2xf32>
    %s_q = quant.qcast %s : tensor<1x2x9xf32> to tensor<1x2x9x!a>
    %s_dq = quant.dcast %s_q : tensor<1x2x9x!a> to tensor<1x2x9xf32>
    %t = aten.op "avg_pool1d.default"(%s_dq, [4]) : (tensor<1x2x9xf32>) -> tensor<1x2x2xf32>
    %t_q = quant.qcast %t : tensor<1x2x2xf32> to tensor<1x2x2x!a>
    %t_dq = quant.dcast %t_q : tensor<1x2x2x!a> to tensor<1x2x2xf32>
    func.return %q_dq, %r_dq, %t_dq : tensor<1x2x2x2xf32>, tensor<1x2x3x2xf32>, tensor<1x2x2xf32>
  }

  // Adaptive pooling of a dynamic spatial size stays: its bins are not known.
  // CHECK-LABEL: func.func @dynamic_adaptive(
  // CHECK:         aten.op "adaptive_avg_pool2d.default"
  // CHECK-NOT:     ref.
  func.func @dynamic_adaptive(%x: tensor<1x2x?x?xf32>) -> tensor<1x2x1x1xf32> {
    %x_q = quant.qcast %x : tensor<1x2x?x?xf32> to tensor<1x2x?x?x!a>
    %x_dq = quant.dcast %x_q : tensor<1x2x?x?x!a> to tensor<1x2x?x?xf32>
    %r = aten.op "adaptive_avg_pool2d.default"(%x_dq, [1, 1]) : (tensor<1x2x?x?xf32>) -> tensor<1x2x1x1xf32>
    %r_q = quant.qcast %r : tensor<1x2x1x1xf32> to tensor<1x2x1x1x!a>
    %r_dq = quant.dcast %r_q : tensor<1x2x1x1x!a> to tensor<1x2x1x1xf32>
    func.return %r_dq : tensor<1x2x1x1xf32>
  }
}
