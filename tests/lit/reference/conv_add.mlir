// RUN: %python %S/Inputs/weights.py %s %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p reference-rewrite | filecheck %s

// A conv whose result is added to another dequantized tensor [then a relu] and quantized is
// one ref.conv_add (X86Quantizer's conv_add_relu unit); in-place add_/relu_ and either
// operand order included.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!a = !quant.uniform<u8:f32, 3.000000e-02:10>
!y = !quant.uniform<u8:f32, 4.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03}>

builtin.module attributes {qir.stage = "quantized"} {
  // CHECK-LABEL: func.func @residual(
  // CHECK:         %[[XQ:.*]] = quant.qcast %x
  // CHECK-NEXT:    %[[AQ:.*]] = quant.qcast %a
  // CHECK:         %[[W:.*]] = aten.param parameter "block.conv2.weight_q"
  // CHECK-NEXT:    %[[B:.*]] = aten.param parameter "block.conv2.bias"
  // CHECK-NEXT:    %[[Y:.*]] = ref.conv_add(%[[XQ]], %[[W]], %[[B]], %[[AQ]]) {stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, groups = 1 : i64, post = "relu", module = "block.conv2"{{.*}}} : (tensor<1x2x6x6x!quant.uniform<u8:f32, 2.000000e-02:128>>, {{.*}}, tensor<2xf32>, tensor<1x2x6x6x!quant.uniform<u8:f32, 3.000000e-02:10>>) -> tensor<1x2x6x6x!quant.uniform<u8:f32, 4.000000e-02>>
  // CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[Y]]
  // CHECK-NEXT:    func.return %[[D]]
  func.func @residual(%x: tensor<1x2x6x6xf32>, %a: tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32> {
    %x_q = quant.qcast %x : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!x>
    %a_q = quant.qcast %a : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!a>
    %x_dq = quant.dcast %x_q : tensor<1x2x6x6x!x> to tensor<1x2x6x6xf32>
    %a_dq = quant.dcast %a_q : tensor<1x2x6x6x!a> to tensor<1x2x6x6xf32>
    %w = aten.param parameter "block.conv2.weight_q" : tensor<2x2x3x3x!w>
    %w_dq = quant.dcast %w : tensor<2x2x3x3x!w> to tensor<2x2x3x3xf32>
    %b = aten.param parameter "block.conv2.bias" : tensor<2xf32>
    %c = aten.op "conv2d.default"(%x_dq, %w_dq, %b, [1, 1], [1, 1]) {module = "block.conv2", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<1x2x6x6xf32>, tensor<2x2x3x3xf32>, tensor<2xf32>) -> tensor<1x2x6x6xf32>
    %s = aten.op "add_.Tensor"(%c, %a_dq) {module = "block"} : (tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
    %r = aten.op "relu_.default"(%s) : (tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
    %r_q = quant.qcast %r : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!y>
    %r_dq = quant.dcast %r_q : tensor<1x2x6x6x!y> to tensor<1x2x6x6xf32>
    func.return %r_dq : tensor<1x2x6x6xf32>
  }

  // The addend first, no activation (MobileNet's inverted residual).
  // CHECK-LABEL: func.func @addend_first(
  // CHECK:         ref.conv_add(%{{.*}}) {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} :
  // CHECK-NOT:     aten.op
  func.func @addend_first(%x: tensor<1x2x6x6xf32>, %a: tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32> {
    %x_q = quant.qcast %x : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!x>
    %a_q = quant.qcast %a : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!a>
    %x_dq = quant.dcast %x_q : tensor<1x2x6x6x!x> to tensor<1x2x6x6xf32>
    %a_dq = quant.dcast %a_q : tensor<1x2x6x6x!a> to tensor<1x2x6x6xf32>
    %w = aten.param parameter "project.weight_q" : tensor<2x2x1x1x!w>
    %w_dq = quant.dcast %w : tensor<2x2x1x1x!w> to tensor<2x2x1x1xf32>
    %c = aten.op "conv2d.default"(%x_dq, %w_dq) : (tensor<1x2x6x6xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x6x6xf32>
    %s = aten.op "add.Tensor"(%a_dq, %c) : (tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
    %s_q = quant.qcast %s : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!y>
    %s_dq = quant.dcast %s_q : tensor<1x2x6x6x!y> to tensor<1x2x6x6xf32>
    func.return %s_dq : tensor<1x2x6x6xf32>
  }

  // An addend of another shape (broadcast) or an add with alpha is no conv_add: the conv gets
  // a float result and the add stays.
  // CHECK-LABEL: func.func @not_fused(
  // CHECK:         %[[C:.*]] = ref.conv({{.*}}) -> tensor<1x2x6x6xf32>
  // CHECK-NEXT:    aten.op "add.Tensor"(%[[C]], %{{.*}})
  // CHECK:         %[[C2:.*]] = ref.conv({{.*}}) -> tensor<1x2x6x6xf32>
  // CHECK-NEXT:    aten.op "add.Tensor"(%[[C2]], %{{.*}}, alpha = 2)
  func.func @not_fused(%x: tensor<1x2x6x6xf32>, %a: tensor<1x2x1x1xf32>) -> (tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32>) {
    %x_q = quant.qcast %x : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!x>
    %a_q = quant.qcast %a : tensor<1x2x1x1xf32> to tensor<1x2x1x1x!a>
    %x_dq = quant.dcast %x_q : tensor<1x2x6x6x!x> to tensor<1x2x6x6xf32>
    %a_dq = quant.dcast %a_q : tensor<1x2x1x1x!a> to tensor<1x2x1x1xf32>
    %w = aten.param parameter "w_q" : tensor<2x2x1x1x!w>
    %w_dq = quant.dcast %w : tensor<2x2x1x1x!w> to tensor<2x2x1x1xf32>
    %c = aten.op "conv2d.default"(%x_dq, %w_dq) : (tensor<1x2x6x6xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x6x6xf32>
    %s = aten.op "add.Tensor"(%c, %a_dq) : (tensor<1x2x6x6xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x6x6xf32>
    %s_q = quant.qcast %s : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!y>
    %s_dq = quant.dcast %s_q : tensor<1x2x6x6x!y> to tensor<1x2x6x6xf32>
    %c2 = aten.op "conv2d.default"(%x_dq, %w_dq) : (tensor<1x2x6x6xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x6x6xf32>
    %t = aten.op "add.Tensor"(%c2, %x_dq, alpha = 2) : (tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32>) -> tensor<1x2x6x6xf32>
    %t_q = quant.qcast %t : tensor<1x2x6x6xf32> to tensor<1x2x6x6x!y>
    %t_dq = quant.dcast %t_q : tensor<1x2x6x6x!y> to tensor<1x2x6x6xf32>
    func.return %s_dq, %t_dq : tensor<1x2x6x6xf32>, tensor<1x2x6x6xf32>
  }
}
