// RUN: %python %S/Inputs/saturating_weights.py %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p 'reference-rewrite{backend=x86 target=x86-avx2},lower-x86{target=x86-avx2}' | filecheck %s --check-prefix=AVX2
// RUN: qir-opt %s --weights %t.safetensors -p 'reference-rewrite{backend=x86 target=x86-avx512-vnni},lower-x86{target=x86-avx512-vnni}' | filecheck %s --check-prefix=VNNI
// RUN: not qir-opt %s --weights %t.safetensors -p 'lower-x86{target=x86-avx3}' 2>&1 | filecheck %s --check-prefix=BAD

// The target decides what the x86 kernels compute. Without VNNI they add pairs of uint8 x int8
// products in int16 with saturation: channel 0's pair (127, 127) times activations of 255 does
// not fit, so on x86-avx2 the linear stays in the Q/DQ form (float, exactly what the program
// says); with VNNI it runs as a kernel, and the program records that it needs VNNI to be right.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-02,1.000000e-02}>

// AVX2: builtin.module attributes {qir.stage = "lowered", qir.target = "x86-avx2", qir.backend = "x86"} {
// AVX2-NOT:  x86.linear
// AVX2:      aten.op "linear.default"
// AVX2-NOT:  ref.

// VNNI: builtin.module attributes {qir.stage = "lowered", qir.target = "x86-avx512-vnni", qir.backend = "x86", qir.requires = "avx512_vnni"} {
// VNNI:      x86.linear_prepack
// VNNI:      x86.linear(

// BAD: qir-opt: error: pass 'lower-x86': bad options: unknown target 'x86-avx3' (targets: host, x86-avx2,
builtin.module attributes {qir.stage = "quantized"} {
  func.func @forward(%x: tensor<3x4xf32>) -> tensor<3x2xf32> {
    %x_q = quant.qcast %x : tensor<3x4xf32> to tensor<3x4x!x>
    %x_dq = quant.dcast %x_q : tensor<3x4x!x> to tensor<3x4xf32>
    %w = aten.param parameter "fc.weight_q" : tensor<2x4x!w>
    %w_dq = quant.dcast %w : tensor<2x4x!w> to tensor<2x4xf32>
    %b = aten.param parameter "fc.bias" : tensor<2xf32>
    %y = aten.op "linear.default"(%x_dq, %w_dq, %b) {module = "fc"} : (tensor<3x4xf32>, tensor<2x4xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    %y_q = quant.qcast %y : tensor<3x2xf32> to tensor<3x2x!y>
    %y_dq = quant.dcast %y_q : tensor<3x2x!y> to tensor<3x2xf32>
    func.return %y_dq : tensor<3x2xf32>
  }
}
