// RUN: qir-opt %s -p 'lower-inductor{target=x86-avx512-vnni}' | filecheck %s
// Weights: lower.safetensors beside this file (random, seeded: full range, so its linear needs VNNI to be exact).

// The inductor backend hands the Q/DQ form to torch.compile, which fuses the quantize /
// dequantize patterns itself: lower-inductor takes the quantized stage exactly as it is and
// records the target (the compile happens when the emitted module is first called; that a
// reference-stage program is refused up front is tests/test_lowering.py's).

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

// CHECK: builtin.module attributes {qir.stage = "lowered", qir.backend = "inductor", qir.target = "x86-avx512-vnni", qir.requires = "avx512_vnni"} {
// CHECK-NEXT:  func.func @forward(%x: tensor<2x8xf32>) -> tensor<2x2xf32> {
// CHECK-NEXT:    %x_q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!quant.uniform<u8:f32, 2.000000e-02:128>>
// CHECK-NEXT:    %x_dq = quant.dcast %x_q : tensor<2x8x!quant.uniform<u8:f32, 2.000000e-02:128>> to tensor<2x8xf32>
// CHECK-NEXT:    %w = aten.param parameter "fc.weight_q" : tensor<2x8x!quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>>
// CHECK-NEXT:    %w_dq = quant.dcast %w : tensor<2x8x!quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>> to tensor<2x8xf32>
// CHECK-NEXT:    %b = aten.param parameter "fc.bias" : tensor<2xf32>
// CHECK-NEXT:    %l = aten.op "linear.default"(%x_dq, %w_dq, %b) {module = "fc"} : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2xf32>) -> tensor<2x2xf32>
// CHECK-NEXT:    %r = aten.op "relu.default"(%l) : (tensor<2x2xf32>) -> tensor<2x2xf32>
// CHECK-NEXT:    %r_q = quant.qcast %r : tensor<2x2xf32> to tensor<2x2x!quant.uniform<u8:f32, 1.000000e-02>>
// CHECK-NEXT:    %r_dq = quant.dcast %r_q : tensor<2x2x!quant.uniform<u8:f32, 1.000000e-02>> to tensor<2x2xf32>
// CHECK-NEXT:    func.return %r_dq : tensor<2x2xf32>
// CHECK-NOT:     ref.

builtin.module attributes {qir.stage = "quantized"} {
  func.func @forward(%x: tensor<2x8xf32>) -> tensor<2x2xf32> {
    %x_q = quant.qcast %x : tensor<2x8xf32> to tensor<2x8x!x>
    %x_dq = quant.dcast %x_q : tensor<2x8x!x> to tensor<2x8xf32>
    %w = aten.param parameter "fc.weight_q" : tensor<2x8x!w>
    %w_dq = quant.dcast %w : tensor<2x8x!w> to tensor<2x8xf32>
    %b = aten.param parameter "fc.bias" : tensor<2xf32>
    %l = aten.op "linear.default"(%x_dq, %w_dq, %b) {module = "fc"} : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2xf32>) -> tensor<2x2xf32>
    %r = aten.op "relu.default"(%l) : (tensor<2x2xf32>) -> tensor<2x2xf32>
    %r_q = quant.qcast %r : tensor<2x2xf32> to tensor<2x2x!y>
    %r_dq = quant.dcast %r_q : tensor<2x2x!y> to tensor<2x2xf32>
    func.return %r_dq : tensor<2x2xf32>
  }
}
