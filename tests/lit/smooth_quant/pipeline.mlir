// RUN: qir-opt %s -p 'annotate{quantizer=x86 smoothing=0.5 target=x86-avx512-vnni},propagate-annotations,insert-observers' | filecheck %s
// RUN: qir-opt %s -p 'annotate{quantizer=x86 smoothing=0.5 modules="q" target=x86-avx512-vnni},annotate{quantizer=x86 target=x86-avx512-vnni}' | filecheck %s --check-prefix=MODULES
// RUN: not qir-opt %s -p 'annotate{quantizer=dynamic smoothing=0.5}' 2>&1 | filecheck %s --check-prefix=DYNAMIC
// RUN: not qir-opt %s -p 'annotate{quantizer=x86 smoothing=2.0}' 2>&1 | filecheck %s --check-prefix=RANGE

// `smoothing` puts SmoothQuant's spec on the inputs of the quantizer's linears only: the two
// projections reading %h share one smoothed observer (min/max per channel); the add reading
// %h reads it as it is (smooth-quant will divide only what the linears read).

builtin.module {
  func.func @forward(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %wq = aten.param constant "wq" = dense<0.5> : tensor<8x8xf32>
    %wk = aten.param constant "wk" = dense<0.25> : tensor<8x8xf32>
    %h = aten.op "relu.default"(%x) {module = "act", module_type = "torch.nn.modules.activation.ReLU"} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %q = aten.op "linear.default"(%h, %wq) {module = "q", module_type = "torch.nn.modules.linear.Linear"} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    %k = aten.op "linear.default"(%h, %wk) {module = "k", module_type = "torch.nn.modules.linear.Linear"} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    %s = aten.op "add.Tensor"(%q, %k) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %t = aten.op "add.Tensor"(%s, %h) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    func.return %t : tensor<4x8xf32>
  }
}

// CHECK:      %[[HS:.*]] = obs.observe %h {id = "obs[[SG:[0-9]+]]", spec = #obs.spec<u8[0:255], affine, minmax, smooth 0.5, group [[SG]]>}
// CHECK:      aten.op "linear.default"(%[[HS]],
// CHECK:      aten.op "linear.default"(%[[HS]],
// CHECK-NOT:  smooth 0.5
// CHECK:      aten.op "add.Tensor"(%s, %h)

// MODULES:    aten.op "linear.default"(%h, %wq) {module = "q", {{.*}}qin = [#obs.spec<u8[0:255], affine, minmax, smooth 0.5>,
// MODULES:    aten.op "linear.default"(%h, %wk) {module = "k", {{.*}}qin = [#obs.spec<u8[0:255], affine, histogram>,

// DYNAMIC:    error: {{.*}}quantizer 'dynamic' cannot smooth: smoothing needs a static per-tensor input_activation spec
// RANGE:      error: {{.*}}smoothing= is a migration strength in [0, 1]
