// REQUIRES: qir-bmm-backend
// RUN: qir-opt %s -p 'annotate{quantizer=bmm-int8},propagate-annotations,insert-observers' | filecheck %s

// The external backend's own quantizer, named from qir-opt like qir's (`bmm-int8`, from the
// `qir.backends` entry point of examples/qir_bmm_backend): its `bmm_softmax` pattern observes both
// operands of the first bmm and the softmax's output (the range [0, 1) fixes int8 1/256:-128),
// nothing between the bmm and the softmax; its `bmm` pattern observes the second bmm's operands
// (the softmax's output already is) and not its output, which nothing reads quantized.

builtin.module attributes {qir.stage = "float"} {
  func.func @forward(%q: tensor<2x4x8xf32>, %k: tensor<2x4x8xf32>, %v: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %transpose = aten.op "transpose.int"(%k, 1, 2) : (tensor<2x4x8xf32>) -> tensor<2x8x4xf32>
    %bmm = aten.op "bmm.default"(%q, %transpose) : (tensor<2x4x8xf32>, tensor<2x8x4xf32>) -> tensor<2x4x4xf32>
    %softmax = aten.op "softmax.int"(%bmm, -1) : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    %bmm_1 = aten.op "bmm.default"(%softmax, %v) : (tensor<2x4x4xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    func.return %bmm_1 : tensor<2x4x8xf32>
  }
}

// CHECK:      builtin.module attributes {qir.stage = "observed"}
// CHECK:      %[[T:.*]] = aten.op "transpose.int"(%k, 1, 2)
// CHECK-NEXT: %[[QO:.*]] = obs.observe %q {id = "obs0", spec = #obs.spec<i8[-128:127], affine, histogram, group 0>}
// CHECK-NEXT: %[[TO:.*]] = obs.observe %[[T]] {id = "obs1", spec = #obs.spec<i8[-128:127], affine, histogram, group 1>}
// CHECK-NEXT: %[[B:.*]] = aten.op "bmm.default"(%[[QO]], %[[TO]])
// CHECK-NEXT: %[[S:.*]] = aten.op "softmax.int"(%[[B]], -1)
// CHECK-NEXT: %[[SO:.*]] = obs.observe %[[S]] {id = "obs2", spec = #obs.fixed<i8[-128:127], 0.00390625:-128, group 2>}
// CHECK-NEXT: %[[VO:.*]] = obs.observe %v {id = "obs3", spec = #obs.spec<i8[-128:127], affine, histogram, group 3>}
// CHECK-NEXT: %[[O:.*]] = aten.op "bmm.default"(%[[SO]], %[[VO]])
// CHECK-NEXT: func.return %[[O]]
