// RUN: qir-opt %s -p 'annotate{quantizer=x86 target=x86-avx512-vnni}' | filecheck %s

// A conv followed by relu is one unit: the conv's inputs and the relu's output are
// annotated, nothing in between. The flatten after it shares the relu's parameters
// (its input arrives quantized), and the linear reads it quantized. The linear's own
// output feeds only the return, so it stays float (int8 in, float out).

builtin.module {
  func.func @forward(%x: tensor<1x3x8x8xf32>) -> tensor<1x2xf32> {
    %w = aten.param constant "w" = dense<0.5> : tensor<8x3x3x3xf32>
    %b = aten.param constant "b" = dense<0.1> : tensor<8xf32>
    %fw = aten.param constant "fw" = dense<0.25> : tensor<2x288xf32>
    %c = aten.op "conv2d.default"(%x, %w, %b) : (tensor<1x3x8x8xf32>, tensor<8x3x3x3xf32>, tensor<8xf32>) -> tensor<1x8x6x6xf32>
    %r = aten.op "relu.default"(%c) : (tensor<1x8x6x6xf32>) -> tensor<1x8x6x6xf32>
    %f = aten.op "flatten.using_ints"(%r, 1) : (tensor<1x8x6x6xf32>) -> tensor<1x288xf32>
    %l = aten.op "linear.default"(%f, %fw) : (tensor<1x288xf32>, tensor<2x288xf32>) -> tensor<1x2xf32>
    func.return %l : tensor<1x2xf32>
  }
}

// CHECK:      builtin.module attributes {qir.target = "x86-avx512-vnni", qir.stage = "annotated"}
// CHECK:      aten.op "conv2d.default"(%x, %w, %b) {qin = [#obs.spec<u8[0:255], affine, histogram>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>, none]}
// CHECK-NEXT: aten.op "relu.default"(%c) {qout = [#obs.spec<u8[0:255], affine, histogram>]}
// CHECK-NEXT: aten.op "flatten.using_ints"(%r, 1) {qout = [#obs.shared<operand 0>]}
// CHECK-NEXT: aten.op "linear.default"(%f, %fw) {qin = [#obs.spec<u8[0:255], affine, histogram>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>]} :
