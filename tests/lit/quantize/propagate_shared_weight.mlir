// RUN: qir-opt %s -p propagate-annotations | filecheck %s
// RUN: qir-opt %s -p propagate-annotations,insert-observers | filecheck %s --check-prefix=OBSERVE

// A weight read by two linears with the same spec (a layer applied twice, ALBERT's shared
// layers) is one group: observed once, stored once after convert. A third reader wanting a
// different spec (per tensor) gets a group of its own.

builtin.module attributes {qir.stage = "annotated"} {
  func.func @forward(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    %w = aten.param parameter "l.weight" = dense<0.5> : tensor<4x4xf32>
    %a = aten.op "linear.default"(%x, %w) {qin = [#obs.spec<u8[0:255], affine, histogram>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>]} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %b = aten.op "linear.default"(%a, %w) {qin = [#obs.spec<u8[0:255], affine, histogram>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>]} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %c = aten.op "linear.default"(%b, %w) {qin = [#obs.spec<u8[0:255], affine, histogram>, #obs.spec<i8[-127:127], symmetric, minmax>]} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    func.return %c : tensor<2x4xf32>
  }
}

// CHECK:      aten.op "linear.default"(%x, %w) {qin = [#obs.spec<u8[0:255], affine, histogram, group 0>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group [[W:[0-9]+]]>]}
// CHECK-NEXT: aten.op "linear.default"(%a, %w) {qin = [#obs.spec<u8[0:255], affine, histogram, group {{[0-9]+}}>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group [[W]]>]}
// CHECK-NEXT: aten.op "linear.default"(%b, %w) {qin = [#obs.spec<u8[0:255], affine, histogram, group {{[0-9]+}}>, #obs.spec<i8[-127:127], symmetric, minmax, group {{[0-9]+}}>]}

// OBSERVE-COUNT-1: obs.observe %w {{.*}}per_channel_minmax
// OBSERVE-NOT:     obs.observe %w {{.*}}per_channel_minmax
// OBSERVE:         obs.observe %w {{.*}}minmax
