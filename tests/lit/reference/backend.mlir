// RUN: %python %S/Inputs/weights.py %s %t.safetensors
// RUN: %python %S/Inputs/with_backend.py %s --weights %t.safetensors -p 'reference-rewrite{backend=no-conv-add}' | filecheck %s
// RUN: %python %S/Inputs/with_backend.py %s --weights %t.safetensors -p 'reference-rewrite{backend=refuse-all}' | filecheck %s --check-prefix=NONE
// RUN: not qir-opt %s --weights %t.safetensors -p 'reference-rewrite{backend=nope}' 2>&1 | filecheck %s --check-prefix=UNKNOWN

// With backend=NAME each ref op is offered to that backend's `accepts` before it goes in. What
// it refuses keeps its Q/DQ form; a refused fusion falls back to the plain op with a float
// result when the backend takes that.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!a = !quant.uniform<u8:f32, 3.000000e-02:10>
!y = !quant.uniform<u8:f32, 4.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module attributes {qir.stage = "quantized"} {
  // CHECK-LABEL: func.func @forward(
  // CHECK:         %[[C:.*]] = ref.conv(%{{.*}}) {{.*}} -> tensor<1x2x6x6xf32>
  // CHECK-NEXT:    %[[S:.*]] = aten.op "add.Tensor"(%[[C]], %{{.*}})
  // CHECK-NEXT:    %[[R:.*]] = aten.op "relu.default"(%[[S]])
  // CHECK-NEXT:    %[[RQ:.*]] = quant.qcast %[[R]]
  // CHECK-NEXT:    %[[RD:.*]] = quant.dcast %[[RQ]]
  // CHECK-NEXT:    %[[H:.*]] = aten.op "hardswish.default"(%[[RD]])
  // CHECK-NEXT:    %[[HQ:.*]] = quant.qcast %[[H]]
  // CHECK-NEXT:    %[[V:.*]] = aten.op "flatten.using_ints"(%[[HQ]], 1) : (tensor<1x2x6x6x!quant.uniform<u8:f32, 4.000000e-02>>) -> tensor<1x72x!quant.uniform<u8:f32, 4.000000e-02>>

  // NONE-LABEL: func.func @forward(
  // NONE-NOT:     ref.
  // NONE:         aten.op "conv2d.default"
  // NONE:         aten.op "hardswish.default"
  // NONE:         aten.op "flatten.using_ints"(%{{.*}}, 1) : (tensor<1x2x6x6x!quant.uniform<u8:f32, 4.000000e-02>>)

  // UNKNOWN: error: {{.*}}unknown backend 'nope'
  func.func @forward(%x: tensor<1x2x6x6xf32>, %a: tensor<1x2x6x6xf32>) -> tensor<1x72xf32> {
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
    %h = aten.op "hardswish.default"(%r_dq) : (tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
    %h_q = quant.qcast %h : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!y>
    %h_dq = quant.dcast %h_q : tensor<1x2x6x6x!y> to tensor<1x2x6x6xf32>
    %v = aten.op "flatten.using_ints"(%h_dq, 1) : (tensor<1x2x6x6xf32>) -> tensor<1x72xf32>
    %v_q = quant.qcast %v : tensor<1x72xf32> to tensor<1x72x!y>
    %v_dq = quant.dcast %v_q : tensor<1x72x!y> to tensor<1x72xf32>
    func.return %v_dq : tensor<1x72xf32>
  }
}
