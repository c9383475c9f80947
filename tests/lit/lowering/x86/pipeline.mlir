// RUN: qir-opt %s -p 'reference-rewrite{backend=x86 target=x86-avx512-vnni},lower-x86{target=x86-avx512-vnni}' | filecheck %s
// Weights: pipeline.safetensors beside this file (random, seeded; lowering reads none of their values).

// From the Q/DQ form: reference-rewrite builds only the ref ops the x86 table accepts, and
// lower-x86 turns them into kernels. An int8-activation add (the table takes uint8 only)
// stays a float add between the casts, which become x86 casts.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02>
!s = !quant.uniform<i8:f32, 5.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

// CHECK: builtin.module attributes {qir.stage = "lowered", qir.target = "x86-avx512-vnni", qir.backend = "x86", qir.requires = "avx512_vnni"}
builtin.module attributes {qir.stage = "quantized"} {
  // CHECK-LABEL: func.func @forward(
  // CHECK-NEXT:    %[[X:.*]] = x86.quantize(%x)
  // CHECK:         %[[P:.*]] = x86.conv_prepack(
  // CHECK-NEXT:    %[[R:.*]] = x86.conv2d_relu(%[[X]], %[[P]]) {module = "c"} : ({{.*}}) -> tensor<1x2x8x8x!quant.uniform<u8:f32, 1.000000e-02>>
  // CHECK-NEXT:    %[[RD:.*]] = x86.dequantize(%[[R]])
  // CHECK-NEXT:    %[[A:.*]] = x86.quantize(%a) : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8x!quant.uniform<i8:f32, 5.000000e-02>>
  // CHECK-NEXT:    %[[AD:.*]] = x86.dequantize(%[[A]])
  // CHECK-NEXT:    %[[S:.*]] = aten.op "add.Tensor"(%[[RD]], %[[AD]])
  // CHECK-NEXT:    %[[SQ:.*]] = x86.quantize(%[[S]]) : ({{.*}}) -> tensor<1x2x8x8x!quant.uniform<i8:f32, 5.000000e-02>>
  // CHECK-NEXT:    %[[SD:.*]] = x86.dequantize(%[[SQ]])
  // CHECK-NEXT:    func.return %[[SD]]
  // CHECK-NOT:     ref.
  func.func @forward(%x: tensor<1x3x8x8xf32>, %a: tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32> {
    %x_q = quant.qcast %x : tensor<1x3x8x8xf32> to tensor<1x3x8x8x!x>
    %x_dq = quant.dcast %x_q : tensor<1x3x8x8x!x> to tensor<1x3x8x8xf32>
    %w = aten.param parameter "c.weight_q" : tensor<2x3x3x3x!w>
    %w_dq = quant.dcast %w : tensor<2x3x3x3x!w> to tensor<2x3x3x3xf32>
    %b = aten.param parameter "c.bias" : tensor<2xf32>
    %c = aten.op "conv2d.default"(%x_dq, %w_dq, %b, [1, 1], [1, 1]) {module = "c"} : (tensor<1x3x8x8xf32>, tensor<2x3x3x3xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
    %r = aten.op "relu.default"(%c) : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
    %r_q = quant.qcast %r : tensor<1x2x8x8xf32> to tensor<1x2x8x8x!y>
    %r_dq = quant.dcast %r_q : tensor<1x2x8x8x!y> to tensor<1x2x8x8xf32>
    %a_q = quant.qcast %a : tensor<1x2x8x8xf32> to tensor<1x2x8x8x!s>
    %a_dq = quant.dcast %a_q : tensor<1x2x8x8x!s> to tensor<1x2x8x8xf32>
    %s = aten.op "add.Tensor"(%r_dq, %a_dq) : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
    %s_q = quant.qcast %s : tensor<1x2x8x8xf32> to tensor<1x2x8x8x!s>
    %s_dq = quant.dcast %s_q : tensor<1x2x8x8x!s> to tensor<1x2x8x8xf32>
    func.return %s_dq : tensor<1x2x8x8xf32>
  }
}
