// RUN: %python %S/../../reference/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p 'reference-rewrite{backend=qnnpack}' | filecheck %s
// RUN: qir-opt %s --weights %t.safetensors -p 'reference-rewrite{backend=qnnpack},lower-qnnpack' | filecheck %s --check-prefix=LOWERED

// What QNNPACK does not run stays in the Q/DQ form, in float: a conv + residual add (no
// QNNPACK kernel, and no float-output conv to fall back to), a transposed 3-D conv (QNNPACK's is
// wrong), a grouped transposed conv with per-channel weights (QNNPACK reads one scale per output
// channel), a linear read in float (no float-output linear on QNNPACK), an average pool that
// excludes its padding (QNNPACK ignores that), an add whose input scale is over 256 times its
// output's (QNNPACK refuses the ratio) and int8 activations. Around them, what QNNPACK runs is
// rewritten and lowered.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!a = !quant.uniform<u8:f32, 3.000000e-02:10>
!y = !quant.uniform<u8:f32, 4.000000e-02>
!big = !quant.uniform<u8:f32, 1.000000e+00:128>
!tiny = !quant.uniform<u8:f32, 3.000000e-03:128>
!s8 = !quant.uniform<i8:f32, 5.000000e-02:3>
!t8 = !quant.uniform<i8:f32, 7.812500e-03>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>
!wt = !quant.uniform<i8:f32, 5.000000e-03>
!wg = !quant.uniform<i8:f32:1, {1.000000e-03,2.000000e-03}>

builtin.module attributes {qir.stage = "quantized"} {
  // CHECK-LABEL: func.func @conv_add(
  // CHECK-NOT:     ref.
  // CHECK:         %[[C:.*]] = aten.op "conv2d.default"
  // CHECK-NEXT:    %[[S:.*]] = aten.op "add.Tensor"(%[[C]], %a_dq)
  // CHECK-NEXT:    %[[R:.*]] = aten.op "relu.default"(%[[S]])
  // CHECK-NEXT:    quant.qcast %[[R]]
  // LOWERED-LABEL: func.func @conv_add(
  // LOWERED:         %[[XQ:.*]] = qnnpack.quantize(%x)
  // LOWERED-NEXT:    %[[AQ:.*]] = qnnpack.quantize(%a)
  // LOWERED-NEXT:    %[[XD:.*]] = qnnpack.dequantize(%[[XQ]])
  // LOWERED-NEXT:    %[[AD:.*]] = qnnpack.dequantize(%[[AQ]])
  // LOWERED:         aten.op "conv2d.default"(%[[XD]],
  // LOWERED:         aten.op "add.Tensor"({{.*}}, %[[AD]])
  func.func @conv_add(%x: tensor<1x2x6x6xf32>, %a: tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32> {
    %x_q = quant.qcast %x : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!x>
    %a_q = quant.qcast %a : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!a>
    %x_dq = quant.dcast %x_q : tensor<1x2x6x6x!x> to tensor<1x2x6x6xf32>
    %a_dq = quant.dcast %a_q : tensor<1x2x6x6x!a> to tensor<1x2x6x6xf32>
    %w = aten.param parameter "conv.weight_q" : tensor<2x2x3x3x!w>
    %w_dq = quant.dcast %w : tensor<2x2x3x3x!w> to tensor<2x2x3x3xf32>
    %b = aten.param parameter "conv.bias" : tensor<2xf32>
    %c = aten.op "conv2d.default"(%x_dq, %w_dq, %b, [1, 1], [1, 1]) : (tensor<1x2x6x6xf32>, tensor<2x2x3x3xf32>, tensor<2xf32>) -> tensor<1x2x6x6xf32>
    %s = aten.op "add.Tensor"(%c, %a_dq) : (tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
    %r = aten.op "relu.default"(%s) : (tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
    %r_q = quant.qcast %r : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!y>
    %r_dq = quant.dcast %r_q : tensor<1x2x6x6x!y> to tensor<1x2x6x6xf32>
    func.return %r_dq : tensor<1x2x6x6xf32>
  }

  // The plain 3-D conv runs; the transposed one after it stays float.
  // CHECK-LABEL: func.func @transposed(
  // CHECK:         %[[C3:.*]] = ref.conv(%{{.*}}) {{.*}} -> tensor<1x2x4x4x4x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    %[[C3D:.*]] = quant.dcast %[[C3]]
  // CHECK:         aten.op "conv_transpose3d.input"(%[[C3D]],
  // CHECK:         aten.op "conv_transpose2d.input"({{.*}}, 2)
  // CHECK-NOT:     ref.conv
  // CHECK:         func.return
  // LOWERED-LABEL: func.func @transposed(
  // LOWERED:         qnnpack.conv3d(
  // LOWERED-NOT:     qnnpack.conv_transpose
  // LOWERED:         func.return
  func.func @transposed(%x: tensor<1x2x4x4x4xf32>, %x2: tensor<1x2x5x5xf32>) -> (tensor<1x2x8x8x8xf32>, tensor<1x4x7x7xf32>) {
    %x_q = quant.qcast %x : tensor<1x2x4x4x4xf32> to tensor<1x2x4x4x4x!x>
    %x_dq = quant.dcast %x_q : tensor<1x2x4x4x4x!x> to tensor<1x2x4x4x4xf32>
    %w = aten.param parameter "c3.weight_q" : tensor<2x2x3x3x3x!w>
    %w_dq = quant.dcast %w : tensor<2x2x3x3x3x!w> to tensor<2x2x3x3x3xf32>
    %c = aten.op "conv3d.default"(%x_dq, %w_dq, none, [1, 1, 1], [1, 1, 1]) : (tensor<1x2x4x4x4xf32>, tensor<2x2x3x3x3xf32>) -> tensor<1x2x4x4x4xf32>
    %c_q = quant.qcast %c : tensor<1x2x4x4x4xf32> to tensor<1x2x4x4x4x!x>
    %c_dq = quant.dcast %c_q : tensor<1x2x4x4x4x!x> to tensor<1x2x4x4x4xf32>
    %wt = aten.param parameter "t3.weight_q" : tensor<2x2x2x2x2x!wt>
    %wt_dq = quant.dcast %wt : tensor<2x2x2x2x2x!wt> to tensor<2x2x2x2x2xf32>
    %t = aten.op "conv_transpose3d.input"(%c_dq, %wt_dq, none, [2, 2, 2]) : (tensor<1x2x4x4x4xf32>, tensor<2x2x2x2x2xf32>) -> tensor<1x2x8x8x8xf32>
    %t_q = quant.qcast %t : tensor<1x2x8x8x8xf32> to tensor<1x2x8x8x8x!y>
    %t_dq = quant.dcast %t_q : tensor<1x2x8x8x8x!y> to tensor<1x2x8x8x8xf32>
    %x2_q = quant.qcast %x2 : tensor<1x2x5x5xf32> to tensor<1x2x5x5x!x>
    %x2_dq = quant.dcast %x2_q : tensor<1x2x5x5x!x> to tensor<1x2x5x5xf32>
    %wg = aten.param parameter "tg.weight_q" : tensor<2x2x3x3x!wg>
    %wg_dq = quant.dcast %wg : tensor<2x2x3x3x!wg> to tensor<2x2x3x3xf32>
    %g = aten.op "conv_transpose2d.input"(%x2_dq, %wg_dq, none, [1, 1], [0, 0], [0, 0], 2) : (tensor<1x2x5x5xf32>, tensor<2x2x3x3xf32>) -> tensor<1x4x7x7xf32>
    %g_q = quant.qcast %g : tensor<1x4x7x7xf32> to tensor<1x4x7x7x!y>
    %g_dq = quant.dcast %g_q : tensor<1x4x7x7x!y> to tensor<1x4x7x7xf32>
    func.return %t_dq, %g_dq : tensor<1x2x8x8x8xf32>, tensor<1x4x7x7xf32>
  }

  // CHECK-LABEL: func.func @float_linear(
  // CHECK-NOT:     ref.
  // CHECK:         aten.op "linear.default"
  // LOWERED-LABEL: func.func @float_linear(
  // LOWERED:         %[[Q:.*]] = qnnpack.quantize(%x)
  // LOWERED-NEXT:    %[[D:.*]] = qnnpack.dequantize(%[[Q]])
  // LOWERED:         aten.op "linear.default"(%[[D]],
  func.func @float_linear(%x: tensor<2x2xf32>) -> tensor<2x2xf32> {
    %x_q = quant.qcast %x : tensor<2x2xf32> to tensor<2x2x!x>
    %x_dq = quant.dcast %x_q : tensor<2x2x!x> to tensor<2x2xf32>
    %w = aten.param parameter "fc.weight_q" : tensor<2x2x!w>
    %w_dq = quant.dcast %w : tensor<2x2x!w> to tensor<2x2xf32>
    %b = aten.param parameter "fc.bias" : tensor<2xf32>
    %l = aten.op "linear.default"(%x_dq, %w_dq, %b) : (tensor<2x2xf32>, tensor<2x2xf32>, tensor<2xf32>) -> tensor<2x2xf32>
    func.return %l : tensor<2x2xf32>
  }

  // The pool that counts its padding runs; the one that excludes it stays float. The add of a
  // 1.0-scale input to a 0.003-scale output stays float; with its output at 0.04 it runs.
  // CHECK-LABEL: func.func @pool_and_add(
  // CHECK:         ref.avg_pool(%{{.*}}) {kernel_size = array<i64: 3, 3>, stride = array<i64: 2, 2>, padding = array<i64: 1, 1>, ceil_mode = false, count_include_pad = true}
  // CHECK:         aten.op "avg_pool2d.default"({{.*}}, [3, 3], [2, 2], [1, 1], false, false)
  // CHECK:         aten.op "add.Tensor"
  // CHECK:         ref.add(%{{.*}}) : {{.*}} -> tensor<1x2x6x6x!quant.uniform<u8:f32, 4.000000e-02>>
  // LOWERED-LABEL: func.func @pool_and_add(
  // LOWERED:         qnnpack.avg_pool
  // LOWERED:         aten.op "avg_pool2d.default"
  // LOWERED:         aten.op "add.Tensor"
  // LOWERED:         qnnpack.add(
  func.func @pool_and_add(%x: tensor<1x2x6x6xf32>, %a: tensor<1x2x6x6xf32>) -> (tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32>) {
    %x_q = quant.qcast %x : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!x>
    %x_dq = quant.dcast %x_q : tensor<1x2x6x6x!x> to tensor<1x2x6x6xf32>
    %p = aten.op "avg_pool2d.default"(%x_dq, [3, 3], [2, 2], [1, 1]) : (tensor<1x2x6x6xf32>) -> tensor<1x2x3x3xf32>
    %p_q = quant.qcast %p : tensor<1x2x3x3xf32> to tensor<1x2x3x3x!x>
    %p_dq = quant.dcast %p_q : tensor<1x2x3x3x!x> to tensor<1x2x3x3xf32>
    %e = aten.op "avg_pool2d.default"(%x_dq, [3, 3], [2, 2], [1, 1], false, false) : (tensor<1x2x6x6xf32>) -> tensor<1x2x3x3xf32>
    %e_q = quant.qcast %e : tensor<1x2x3x3xf32> to tensor<1x2x3x3x!x>
    %e_dq = quant.dcast %e_q : tensor<1x2x3x3x!x> to tensor<1x2x3x3xf32>
    %a_q = quant.qcast %a : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!big>
    %a_dq = quant.dcast %a_q : tensor<1x2x6x6x!big> to tensor<1x2x6x6xf32>
    %s = aten.op "add.Tensor"(%a_dq, %x_dq) : (tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
    %s_q = quant.qcast %s : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!tiny>
    %s_dq = quant.dcast %s_q : tensor<1x2x6x6x!tiny> to tensor<1x2x6x6xf32>
    %s2 = aten.op "add.Tensor"(%a_dq, %x_dq) : (tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
    %s2_q = quant.qcast %s2 : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!y>
    %s2_dq = quant.dcast %s2_q : tensor<1x2x6x6x!y> to tensor<1x2x6x6xf32>
    func.return %p_dq, %e_dq, %s_dq, %s2_dq : tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32>
  }

  // int8 activations: only the casts at the float boundary are torch calls (qint8 tensors).
  // CHECK-LABEL: func.func @int8(
  // CHECK-NOT:     ref.
  // CHECK:         aten.op "tanh.default"
  // LOWERED-LABEL: func.func @int8(
  // LOWERED:         %[[Q8:.*]] = qnnpack.quantize(%x) : (tensor<2x3xf32>) -> tensor<2x3x!quant.uniform<i8:f32, 5.000000e-02:3>>
  // LOWERED-NEXT:    %[[D8:.*]] = qnnpack.dequantize(%[[Q8]])
  // LOWERED-NEXT:    aten.op "tanh.default"(%[[D8]])
  func.func @int8(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
    %x_q = quant.qcast %x : tensor<2x3xf32> to tensor<2x3x!s8>
    %x_dq = quant.dcast %x_q : tensor<2x3x!s8> to tensor<2x3xf32>
    %t = aten.op "tanh.default"(%x_dq) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    %t_q = quant.qcast %t : tensor<2x3xf32> to tensor<2x3x!t8>
    %t_dq = quant.dcast %t_q : tensor<2x3x!t8> to tensor<2x3xf32>
    func.return %t_dq : tensor<2x3xf32>
  }
}
