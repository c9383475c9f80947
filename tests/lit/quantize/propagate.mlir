// RUN: qir-opt %s -p propagate-annotations | filecheck %s

// cat's inputs share one group with its output and with both producers' outputs:
// one set of parameters, no requantization. The view shares its input's group.

builtin.module attributes {qir.stage = "annotated"} {
  func.func @forward(%x: tensor<2x4xf32>, %y: tensor<2x4xf32>) -> tensor<16xf32> {
    %a = aten.op "relu.default"(%x) {qin = [#obs.spec<u8[0:255], affine, minmax>], qout = [#obs.spec<u8[0:255], affine, minmax>]} : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %b = aten.op "relu.default"(%y) {qin = [#obs.spec<u8[0:255], affine, minmax>], qout = [#obs.spec<u8[0:255], affine, minmax>]} : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %c = aten.op "cat.default"([%a, %b], 1) {qin = [#obs.spec<u8[0:255], affine, minmax>, #obs.shared<operand 0>], qout = [#obs.shared<operand 0>]} : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x8xf32>
    %v = aten.op "view.default"(%c, [16]) {qout = [#obs.shared<operand 0>]} : (tensor<2x8xf32>) -> tensor<16xf32>
    func.return %v : tensor<16xf32>
  }
}

// CHECK:      aten.op "relu.default"(%x) {qin = [#obs.spec<u8[0:255], affine, minmax, group 0>], qout = [#obs.spec<u8[0:255], affine, minmax, group 1>]}
// CHECK-NEXT: aten.op "relu.default"(%y) {qin = [#obs.spec<u8[0:255], affine, minmax, group 2>], qout = [#obs.spec<u8[0:255], affine, minmax, group 1>]}
// CHECK-NEXT: aten.op "cat.default"([%a, %b], 1) {qin = [#obs.spec<u8[0:255], affine, minmax, group 1>, #obs.spec<u8[0:255], affine, minmax, group 1>], qout = [#obs.spec<u8[0:255], affine, minmax, group 1>]}
// CHECK-NEXT: aten.op "view.default"(%c, [16]) {qout = [#obs.spec<u8[0:255], affine, minmax, group 1>]}
// CHECK-NOT:  obs.shared
