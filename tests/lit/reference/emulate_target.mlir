// RUN: %python %S/../lowering/x86/Inputs/saturating_weights.py %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p 'emulate-target{target=x86-avx2}' | filecheck %s --check-prefix=AVX2
// RUN: qir-opt %s --weights %t.safetensors -p 'emulate-target{target=x86-avx2 kernels=onednn}' | filecheck %s --check-prefix=AVX2
// RUN: qir-opt %s --weights %t.safetensors -p 'emulate-target{target=x86-avx512-vnni}' | filecheck %s --check-prefix=VNNI
// RUN: not qir-opt %s --weights %t.safetensors -p 'emulate-target{kernels=arm}' 2>&1 | filecheck %s --check-prefix=BAD

// The reference asked to emulate a target: a linear whose weights have a pair that overflows
// int16 (127, 127 times activations of 255) computes what x86's kernels compute on a CPU
// without VNNI (its linears run on oneDNN). With VNNI nothing changes.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02>
!w = !quant.uniform<i8:f32:0, {1.000000e-02,1.000000e-02}>

// AVX2: builtin.module attributes {qir.stage = "reference", qir.target = "x86-avx2"} {
// AVX2:   ref.linear(%{{.*}}, %{{.*}}, %{{.*}}) {saturate = "onednn", module = "fc"}
// VNNI: builtin.module attributes {qir.stage = "reference", qir.target = "x86-avx512-vnni"} {
// VNNI:   ref.linear(%{{.*}}, %{{.*}}, %{{.*}}) {module = "fc"} :
// BAD: unknown kernels 'arm' (expected x86 or onednn)
builtin.module attributes {qir.stage = "reference"} {
  func.func @forward(%x: tensor<3x4xf32>) -> tensor<3x2xf32> {
    %x_q = quant.qcast %x : tensor<3x4xf32> to tensor<3x4x!x>
    %w = aten.param parameter "fc.weight_q" : tensor<2x4x!w>
    %b = aten.param parameter "fc.bias" : tensor<2xf32>
    %y = ref.linear(%x_q, %w, %b) {module = "fc"} : (tensor<3x4x!x>, tensor<2x4x!w>, tensor<2xf32>) -> tensor<3x2x!y>
    %y_dq = quant.dcast %y : tensor<3x2x!y> to tensor<3x2xf32>
    func.return %y_dq : tensor<3x2xf32>
  }
}
