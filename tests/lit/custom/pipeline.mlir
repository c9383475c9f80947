// RUN: qir-opt %s -p 'annotate{quantizer=x86 target=x86-avx512-vnni},propagate-annotations,insert-observers' | filecheck %s

// A custom module with a quantized replacement (`custom`) is observed at its boundary with
// the quantizer's activation specs: its input shares the relu's observer (same spec), its
// output has an observer the linear after it reads, and insert-observers gives it its
// observed form. A module kept float is not observed: the linear after it observes its
// own input. Integer arguments are never observed.

builtin.module attributes {qir.stage = "float"} {
  func.func @forward(%x: tensor<2x16xf32>, %ids: tensor<2xi64>) -> tensor<2x4xf32> {
    %w = aten.param constant "w" = dense<0.5> : tensor<16x16xf32>
    %w2 = aten.param constant "w2" = dense<0.25> : tensor<4x16xf32>
    %l = aten.op "linear.default"(%x, %w) : (tensor<2x16xf32>, tensor<16x16xf32>) -> tensor<2x16xf32>
    %r = aten.op "relu.default"(%l) : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %a = custom.call custom "attn"(%r, %ids) {module = "attn"} : (tensor<2x16xf32>, tensor<2xi64>) -> tensor<2x16xf32>
    %k = custom.call "numpy_filter"(%a) {module = "numpy_filter"} : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %y = aten.op "linear.default"(%k, %w2) : (tensor<2x16xf32>, tensor<4x16xf32>) -> tensor<2x4xf32>
    func.return %y : tensor<2x4xf32>
  }
}

// CHECK:      %[[R:.*]] = aten.op "relu.default"
// CHECK-NEXT: %[[RO:.*]] = obs.observe %[[R]] {id = "[[RID:obs[0-9]+]]", spec = #obs.spec<u8[0:255], affine, histogram, group {{[0-9]+}}>}
// CHECK-NEXT: %[[A:.*]] = custom.call observed "attn"(%[[RO]], %ids) {module = "attn"} : (tensor<2x16xf32>, tensor<2xi64>) -> tensor<2x16xf32>
// CHECK-NEXT: %[[AO:.*]] = obs.observe %[[A]] {id = "{{obs[0-9]+}}", spec = #obs.spec<u8[0:255], affine, histogram, group {{[0-9]+}}>}
// CHECK-NEXT: %[[K:.*]] = custom.call "numpy_filter"(%[[AO]]) {module = "numpy_filter"}
// CHECK-NEXT: %[[KO:.*]] = obs.observe %[[K]]
// CHECK:      aten.op "linear.default"(%[[KO]],
