// RUN: qir-opt %s -p reference-rewrite | filecheck %s

// Any elementwise unary function between a dequantize and a quantize is a table over the
// storage: ref.lookup, `fn` its ATen target, `fn_args` its other arguments in schema order
// (keyword-only ones too; schema defaults fill gaps), an in-place variant named by its
// functional op. int8 and uint8 storage alike.

!u = !quant.uniform<u8:f32, 5.000000e-02:128>
!s = !quant.uniform<i8:f32, 4.000000e-02:-3>

builtin.module attributes {qir.stage = "quantized"} {
  // CHECK-LABEL: func.func @functions(
  // CHECK-NEXT:    %[[X:.*]] = quant.qcast %x
  // CHECK-NEXT:    %[[H:.*]] = ref.lookup(%[[X]]) {fn = "hardswish.default", module = "act"} : (tensor<8x!quant.uniform<u8:f32, 5.000000e-02:128>>) -> tensor<8x!quant.uniform<i8:f32, 4.000000e-02:-3>>
  // CHECK-NEXT:    %[[G:.*]] = ref.lookup(%[[H]]) {fn = "gelu.default", fn_args = ["tanh"]} : (tensor<8x!quant.uniform<i8:f32, 4.000000e-02:-3>>) -> tensor<8x!quant.uniform<i8:f32, 4.000000e-02:-3>>
  // CHECK-NEXT:    %[[L:.*]] = ref.lookup(%[[G]]) {fn = "leaky_relu.default", fn_args = [2.000000e-01 : f64]}
  // CHECK-NEXT:    %[[C:.*]] = ref.lookup(%[[L]]) {fn = "clamp.default", fn_args = [none, 2.000000e+00 : f64]}
  // CHECK-NEXT:    %[[E:.*]] = ref.lookup(%[[C]]) {fn = "elu.default", fn_args = [1 : i64, 1 : i64, 3.000000e+00 : f64]}
  // CHECK-NEXT:    %[[M:.*]] = ref.lookup(%[[E]]) {fn = "mul.Tensor", fn_args = [5.000000e-01 : f64]}
  // CHECK-NEXT:    %[[R:.*]] = ref.lookup(%[[M]]) {fn = "relu.default"} : ({{.*}}) -> tensor<8x!quant.uniform<i8:f32, 4.000000e-02:-3>>
  // CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[R]]
  // CHECK-NEXT:    func.return %[[D]]
  func.func @functions(%x: tensor<8xf32>) -> tensor<8xf32> {
    %x_q = quant.qcast %x : tensor<8xf32> to tensor<8x!u>
    %x_dq = quant.dcast %x_q : tensor<8x!u> to tensor<8xf32>
    %h = aten.op "hardswish.default"(%x_dq) {module = "act"} : (tensor<8xf32>) -> tensor<8xf32>
    %h_q = quant.qcast %h : tensor<8xf32> to tensor<8x!s>
    %h_dq = quant.dcast %h_q : tensor<8x!s> to tensor<8xf32>
    %g = aten.op "gelu.default"(%h_dq, approximate = "tanh") : (tensor<8xf32>) -> tensor<8xf32>
    %g_q = quant.qcast %g : tensor<8xf32> to tensor<8x!s>
    %g_dq = quant.dcast %g_q : tensor<8x!s> to tensor<8xf32>
    %l = aten.op "leaky_relu.default"(%g_dq, 0.2) : (tensor<8xf32>) -> tensor<8xf32>
    %l_q = quant.qcast %l : tensor<8xf32> to tensor<8x!s>
    %l_dq = quant.dcast %l_q : tensor<8x!s> to tensor<8xf32>
    %c = aten.op "clamp.default"(%l_dq, none, 2.0) : (tensor<8xf32>) -> tensor<8xf32>
    %c_q = quant.qcast %c : tensor<8xf32> to tensor<8x!s>
    %c_dq = quant.dcast %c_q : tensor<8x!s> to tensor<8xf32>
    %e = aten.op "elu.default"(%c_dq, input_scale = 3.0) : (tensor<8xf32>) -> tensor<8xf32>
    %e_q = quant.qcast %e : tensor<8xf32> to tensor<8x!s>
    %e_dq = quant.dcast %e_q : tensor<8x!s> to tensor<8xf32>
    %m = aten.op "mul.Tensor"(%e_dq, 0.5) : (tensor<8xf32>) -> tensor<8xf32>
    %m_q = quant.qcast %m : tensor<8xf32> to tensor<8x!s>
    %m_dq = quant.dcast %m_q : tensor<8x!s> to tensor<8xf32>
    %r = aten.op "relu_.default"(%m_dq) : (tensor<8xf32>) -> tensor<8xf32>
    %r_q = quant.qcast %r : tensor<8xf32> to tensor<8x!s>
    %r_dq = quant.dcast %r_q : tensor<8x!s> to tensor<8xf32>
    func.return %r_dq : tensor<8xf32>
  }

  // Not tables: an in-place op whose input is read again (the write would be seen), a
  // reduction (softmax), a random op, an argument that is not a constant.
  // CHECK-LABEL: func.func @not_lookups(
  // CHECK-NOT:     ref.
  // CHECK:         func.return
  func.func @not_lookups(%x: tensor<8xf32>, %n: i64) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) {
    %x_q = quant.qcast %x : tensor<8xf32> to tensor<8x!u>
    %x_dq = quant.dcast %x_q : tensor<8x!u> to tensor<8xf32>
    %r = aten.op "relu_.default"(%x_dq) : (tensor<8xf32>) -> tensor<8xf32>
    %r_q = quant.qcast %r : tensor<8xf32> to tensor<8x!u>
    %r_dq = quant.dcast %r_q : tensor<8x!u> to tensor<8xf32>
    %s = aten.op "_softmax.default"(%x_dq, 0, false) : (tensor<8xf32>) -> tensor<8xf32>
    %s_q = quant.qcast %s : tensor<8xf32> to tensor<8x!u>
    %s_dq = quant.dcast %s_q : tensor<8x!u> to tensor<8xf32>
    %d = aten.op "rrelu.default"(%x_dq) : (tensor<8xf32>) -> tensor<8xf32>
    %d_q = quant.qcast %d : tensor<8xf32> to tensor<8x!u>
    %d_dq = quant.dcast %d_q : tensor<8x!u> to tensor<8xf32>
    %p = aten.op "pow.Tensor_Scalar"(%x_dq, %n) : (tensor<8xf32>, i64) -> tensor<8xf32>
    %p_q = quant.qcast %p : tensor<8xf32> to tensor<8x!u>
    %p_dq = quant.dcast %p_q : tensor<8x!u> to tensor<8xf32>
    func.return %r_dq, %s_dq, %d_dq, %p_dq : tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>
  }
}
