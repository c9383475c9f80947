// RUN: qir-opt %s -p 'annotate{quantizer=dynamic modules="layer[.][0-9]+[.]ffn_in" target=x86-avx512-vnni},annotate{quantizer=x86 target=x86-avx512-vnni}' | filecheck %s
// RUN: qir-opt %s -p 'annotate{quantizer=dynamic modules="layer[.][0-9]+[.]ffn_in" target=x86-avx512-vnni},annotate{quantizer=x86 target=x86-avx512-vnni},propagate-annotations,insert-observers' | filecheck %s --check-prefix=OBSERVE
// RUN: qir-opt %s -p 'annotate{quantizer=weight-int8 modules="head"},annotate{quantizer=x86 target=x86-avx512-vnni}' | filecheck %s --check-prefix=WEIGHT
// RUN: not qir-opt %s -p 'annotate{quantizer=dynamic modules="layer[.](" }' 2>&1 | filecheck %s --check-prefix=BADREGEX
// RUN: env PYTHONWARNINGS=default qir-opt %s -p 'annotate{quantizer=dynamic modules="model[.]layer[.][0-9]+[.]ffn_in"}' 2>&1 | filecheck %s --check-prefix=NOMATCH

// A mixed recipe as a pipeline, as ComposableQuantizer is a list: the first annotate quantizes
// the linears whose module path matches `modules` dynamically (per token), the second annotates
// what is left with the static x86 recipe; each validates only what it annotated. (The pipeline
// syntax has no backslash escapes: a literal dot is `[.]`.)

builtin.module {
  func.func @forward(%x: tensor<4x8xf32>) -> tensor<4x3xf32> {
    %w1 = aten.param constant "w1" = dense<0.5> : tensor<8x8xf32>
    %w2 = aten.param constant "w2" = dense<0.25> : tensor<8x8xf32>
    %w3 = aten.param constant "w3" = dense<0.125> : tensor<3x8xf32>
    %a = aten.op "linear.default"(%x, %w1) {module = "layer.0.ffn_in", module_type = "torch.nn.modules.linear.Linear"} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    %b = aten.op "linear.default"(%a, %w2) {module = "layer.0.ffn_out", module_type = "torch.nn.modules.linear.Linear"} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    %c = aten.op "linear.default"(%b, %w3) {module = "head", module_type = "torch.nn.modules.linear.Linear"} : (tensor<4x8xf32>, tensor<3x8xf32>) -> tensor<4x3xf32>
    func.return %c : tensor<4x3xf32>
  }
}

// CHECK:      aten.op "linear.default"(%x, %w1) {module = "layer.0.ffn_in", {{.*}}qin = [#obs.spec<i8[-127:127], symmetric, minmax, dynamic, per_token>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>]}
// CHECK-NOT:  qout
// CHECK-SAME: -> tensor<4x8xf32>
// CHECK-NEXT: aten.op "linear.default"(%a, %w2) {module = "layer.0.ffn_out", {{.*}}qin = [#obs.spec<u8[0:255], affine, histogram>, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>], qout = [#obs.spec<u8[0:255], affine, histogram>]}
// CHECK-NEXT: aten.op "linear.default"(%b, %w3) {module = "head", {{.*}}qin = [#obs.spec<u8[0:255], affine, histogram>,

// OBSERVE:      obs.observe %x {id = "obs0", spec = #obs.spec<i8[-127:127], symmetric, minmax, dynamic, per_token, group 0>}
// OBSERVE:      obs.observe %a {id = "{{.*}}", spec = #obs.spec<u8[0:255], affine, histogram, group {{.*}}>}

// The weight-only head, then everything else static.
// WEIGHT:      aten.op "linear.default"(%x, %w1) {module = "layer.0.ffn_in", {{.*}}qin = [#obs.spec<u8[0:255], affine, histogram>,
// WEIGHT:      aten.op "linear.default"(%b, %w3) {module = "head", {{.*}}qin = [none, #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>]}

// BADREGEX: error: {{.*}}is not a regular expression

// NOMATCH: qir-opt: warning: DynamicQuantizer: pattern r"model{{.*}}ffn_in" names no module of the program (its modules are named like 'layer.0.ffn_out')
