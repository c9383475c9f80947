// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s
// Weights: boundaries.safetensors beside this file (random, seeded; lowering reads none of their values).

// The float boundaries. In the x86 dialect every quantized value is a torch quantized tensor:
// a per-tensor quant.qcast becomes x86.quantize and a quant.dcast x86.dequantize; a quantized
// parameter read as a value (not prepacked) is made one with x86.from_storage; a per-channel
// quantize of an activation has no kernel and stays generic. Views of quantized tensors become
// reshapes (quantized convs leave channels-last tensors, which `view` refuses).

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!w = !quant.uniform<i8:f32:0, {1.000000e-03,2.000000e-03,3.000000e-03}>
!pc = !quant.uniform<u8:f32:1, {1.000000e-02,2.000000e-02,3.000000e-02}>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @casts(
  // CHECK-NEXT:    %[[Q:.*]] = x86.quantize(%f) : (tensor<2x3xf32>) -> tensor<2x3x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    %[[V:.*]] = aten.op "reshape.default"(%[[Q]], [3, 2]) : (tensor<2x3x!quant.uniform<u8:f32, 2.000000e-02:128>>) -> tensor<3x2x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    %[[D:.*]] = x86.dequantize(%[[V]]) : (tensor<3x2x!quant.uniform<u8:f32, 2.000000e-02:128>>) -> tensor<3x2xf32>
  // CHECK-NEXT:    %[[P:.*]] = quant.qcast %f : tensor<2x3xf32> to tensor<2x3x!quant.uniform<u8:f32:1, {{.*}}>>
  // CHECK-NEXT:    func.return %[[D]], %[[P]]
  func.func @casts(%f: tensor<2x3xf32>) -> (tensor<3x2xf32>, tensor<2x3x!pc>) {
    %q = quant.qcast %f : tensor<2x3xf32> to tensor<2x3x!x>
    %v = aten.op "view.default"(%q, [3, 2]) : (tensor<2x3x!x>) -> tensor<3x2x!x>
    %d = quant.dcast %v : tensor<3x2x!x> to tensor<3x2xf32>
    %p = quant.qcast %f : tensor<2x3xf32> to tensor<2x3x!pc>
    func.return %d, %p : tensor<3x2xf32>, tensor<2x3x!pc>
  }

  // A weight read in float (its op stayed in the Q/DQ form) and a quantized constant read by a
  // kernel: both become quantized tensors once, when the module is built.
  // CHECK-LABEL: func.func @params(
  // CHECK-NEXT:    %[[W:.*]] = aten.param parameter "fc.weight_q" : tensor<3x8x!quant.uniform<i8:f32:0, {{.*}}>>
  // CHECK-NEXT:    %[[WT:.*]] = x86.from_storage(%[[W]]) : (tensor<3x8x!quant.uniform<i8:f32:0, {{.*}}>>) -> tensor<3x8x!quant.uniform<i8:f32:0, {{.*}}>>
  // CHECK-NEXT:    %[[WD:.*]] = x86.dequantize(%[[WT]]) : ({{.*}}) -> tensor<3x8xf32>
  // CHECK-NEXT:    %[[L:.*]] = aten.op "linear.default"(%f, %[[WD]])
  // CHECK-NEXT:    %[[C:.*]] = aten.param constant "c_q" : tensor<2x8x!quant.uniform<u8:f32, 2.000000e-02:128>>
  // CHECK-NEXT:    %[[CT:.*]] = x86.from_storage(%[[C]])
  // CHECK-NEXT:    %[[S:.*]] = x86.add(%x, %[[CT]])
  // CHECK-NEXT:    func.return %[[L]], %[[S]]
  func.func @params(%f: tensor<2x8xf32>, %x: tensor<2x8x!x>) -> (tensor<2x3xf32>, tensor<2x8x!x>) {
    %w = aten.param parameter "fc.weight_q" : tensor<3x8x!w>
    %wd = quant.dcast %w : tensor<3x8x!w> to tensor<3x8xf32>
    %l = aten.op "linear.default"(%f, %wd) : (tensor<2x8xf32>, tensor<3x8xf32>) -> tensor<2x3xf32>
    %c = aten.param constant "c_q" : tensor<2x8x!x>
    %s = ref.add(%x, %c) : (tensor<2x8x!x>, tensor<2x8x!x>) -> tensor<2x8x!x>
    func.return %l, %s : tensor<2x3xf32>, tensor<2x8x!x>
  }
}
