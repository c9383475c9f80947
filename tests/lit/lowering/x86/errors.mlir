// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' --split-input-file --verify-diagnostics
// RUN: not qir-opt %s -p 'lower-x86,reference-rewrite{backend=x86}' --split-input-file 2>&1 | filecheck %s --check-prefix=ORDER

// lower-x86 takes the reference stage: on the Q/DQ form it is refused before anything runs,
// naming the pass and the stage, alone or misordered (reference-rewrite{backend=x86} comes
// first). A ref op no x86 rule lowers (an add with a fused hardtanh: the x86 table never asks
// reference-rewrite for one, but a program rewritten for another backend may have it) is an
// error at that op, and nothing is emitted.

// expected-error @+1 {{pass 'lower-x86' needs a program at stage 'reference', but it would run on stage 'quantized'}}
builtin.module attributes {qir.stage = "quantized"} {
  func.func @forward(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
    func.return %x : tensor<2x3xf32>
  }
}

// -----

!a = !quant.uniform<u8:f32, 2.000000e-02:128>
builtin.module attributes {qir.stage = "reference"} {
  func.func @forward(%a: tensor<2x3x!a>) -> tensor<2x3x!a> {
    // expected-error @+1 {{pass 'lower-x86' failed: 'x86' cannot run this op: its capability table refuses it}}
    %s = ref.add(%a, %a) {post = "hardtanh", post_args = array<f64: 0.0, 1.0>, module = "res"} : (tensor<2x3x!a>, tensor<2x3x!a>) -> tensor<2x3x!a>
    func.return %s : tensor<2x3x!a>
  }
}

// ORDER:     errors.mlir:{{[0-9]+}}:1: error: pass 'lower-x86' needs a program at stage 'reference', but it would run on stage 'quantized'
