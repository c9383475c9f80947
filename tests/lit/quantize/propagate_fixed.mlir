// RUN: qir-opt %s -p propagate-annotations | filecheck %s

// A matmul reading a softmax's output takes the softmax's fixed parameters (1/256, 0) on that
// edge: one group, no second observer and no requantization. Its other input, whose producer
// wants a different (histogram) spec, keeps a group of its own.

builtin.module attributes {qir.stage = "annotated"} {
  func.func @forward(%x: tensor<2x4x4xf32>, %v: tensor<2x4x4xf32>) -> tensor<2x4x4xf32> {
    %s = aten.op "softmax.int"(%x, -1) {qin = [#obs.spec<u8[0:255], affine, minmax>], qout = [#obs.fixed<u8[0:255], 3.906250e-03:0>]} : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    %r = aten.op "relu.default"(%v) {qout = [#obs.spec<u8[0:255], affine, histogram>]} : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    %m = aten.op "matmul.default"(%s, %r) {qin = [#obs.spec<u8[0:255], affine, minmax>, #obs.spec<u8[0:255], affine, minmax>], qout = [#obs.spec<u8[0:255], affine, minmax>]} : (tensor<2x4x4xf32>, tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    func.return %m : tensor<2x4x4xf32>
  }
}

// CHECK:      aten.op "softmax.int"(%x, -1) {qin = [#obs.spec<u8[0:255], affine, minmax, group 0>], qout = [#obs.fixed<u8[0:255], 0.00390625:0, group [[FIXED:[0-9]+]]>]}
// CHECK-NEXT: aten.op "relu.default"(%v) {qout = [#obs.spec<u8[0:255], affine, histogram, group [[RELU:[0-9]+]]>]}
// CHECK-NEXT: aten.op "matmul.default"(%s, %r) {qin = [#obs.fixed<u8[0:255], 0.00390625:0, group [[FIXED]]>, #obs.spec<u8[0:255], affine, minmax, group {{[0-9]+}}>]
