// RUN: qir-opt %s | qir-opt | filecheck %s
// RUN: qir-opt %s --print-op-generic | qir-opt | filecheck %s

// A kept module is one opaque call, in each of its forms: kept float (no keyword),
// `custom` (a module with a quantized replacement, not observed yet), `observed`, and
// `quantized`, whose `as` signature gives the types the module sees. Non-tensor arguments,
// the call's pytree structure (in_spec / out_spec) and provenance survive print -> parse
// -> print, also through the generic form.

builtin.module attributes {qir.stage = "quantized"} {
  func.func @forward(%x: tensor<2x16xf32>, %ids: tensor<2xi64>) -> (tensor<2x16xf32>, tensor<2xi64>, tensor<2x16xf32>) {
    %t = custom.call "tokenizer"(%x) {module = "tokenizer", module_type = "model.Tokenizer"} : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %e:2 = custom.call "encoder.numpy_filter"(%t, 3, 2.5, "same", none, %ids) {in_spec = "((*, *, *), {mode: *, mask: *, ids: *})", out_spec = "{y: *, n: *}"} : (tensor<2x16xf32>, tensor<2xi64>) -> (tensor<2x16xf32>, tensor<2xi64>)
    %c = custom.call custom "block.attn"(%e#0) : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %o = custom.call observed "block.attn"(%c) : (tensor<2x16xf32>) -> tensor<2x16xf32>
    %q = custom.call quantized "block.attn"(%o, %ids) as (tensor<2x16x!quant.uniform<u8:f32, 0.02:3>>, tensor<2xi64>) -> tensor<2x16x!quant.uniform<i8:f32, 0.05>> : (tensor<2x16xf32>, tensor<2xi64>) -> tensor<2x16xf32>
    func.return %q, %e#1, %t : tensor<2x16xf32>, tensor<2xi64>, tensor<2x16xf32>
  }
}

// CHECK:      %t = custom.call "tokenizer"(%x) {module = "tokenizer", module_type = "model.Tokenizer"} : (tensor<2x16xf32>) -> tensor<2x16xf32>
// CHECK-NEXT: %e, %e_1 = custom.call "encoder.numpy_filter"(%t, 3, 2.5, "same", none, %ids) {in_spec = "((*, *, *), {mode: *, mask: *, ids: *})", out_spec = "{y: *, n: *}"} : (tensor<2x16xf32>, tensor<2xi64>) -> (tensor<2x16xf32>, tensor<2xi64>)
// CHECK-NEXT: %c = custom.call custom "block.attn"(%e) : (tensor<2x16xf32>) -> tensor<2x16xf32>
// CHECK-NEXT: %o = custom.call observed "block.attn"(%c) : (tensor<2x16xf32>) -> tensor<2x16xf32>
// CHECK-NEXT: %q = custom.call quantized "block.attn"(%o, %ids) as (tensor<2x16x!quant.uniform<u8:f32, 2.000000e-02:3>>, tensor<2xi64>) -> tensor<2x16x!quant.uniform<i8:f32, 5.000000e-02>> : (tensor<2x16xf32>, tensor<2xi64>) -> tensor<2x16xf32>
// CHECK-NEXT: func.return %q, %e_1, %t
