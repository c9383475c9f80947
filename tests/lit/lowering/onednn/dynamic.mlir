// RUN: %python %S/../x86/Inputs/dynamic_weights.py %t.safetensors
// RUN: qir-opt %s --weights %t.safetensors -p 'reference-rewrite{backend=onednn target=x86-avx512-vnni},lower-onednn{target=x86-avx512-vnni}' | filecheck %s --check-prefix=VNNI
// RUN: qir-opt %s --weights %t.safetensors -p 'reference-rewrite{backend=onednn target=x86-avx2},lower-onednn{target=x86-avx2}' -o %t.mlir && qir-opt %t.mlir --weights %t.safetensors | filecheck %s --check-prefix=AVX2

// Dynamic quantization on onednn: the kernels x86 runs (qir.lowering.dynamic_kernels, declared in
// the onednn dialect): the run-time parameters and quantization, and oneDNN's qlinear_pointwise
// given the run-time scale (uint8, per tensor) or followed by the row scales (int8, per token, run
// as q + 128). Without VNNI a weight with a pair of products that could overflow int16 stays in
// the Q/DQ form, as on x86.

!w = !quant.uniform<i8:f32:0, {1.000000e-02,2.000000e-02}>

// VNNI: builtin.module attributes {qir.stage = "lowered", qir.target = "x86-avx512-vnni", qir.backend = "onednn", qir.requires = "avx512_vnni"}
// VNNI-LABEL: func.func @per_tensor(
// VNNI:         %[[S:.*]], %[[Z:.*]] = onednn.choose_qparams(%x) {quantized_type = !quant.any<u8:f32>} : (tensor<3x4xf32>) -> (tensor<f32>, tensor<i64>)
// VNNI-NEXT:    %[[Q:.*]] = onednn.dynamic_quantize(%x, %[[S]], %[[Z]]) : (tensor<3x4xf32>, tensor<f32>, tensor<i64>) -> tensor<3x4x!quant.any<u8:f32>>
// VNNI:         onednn.dynamic_linear(%[[Q]], %[[S]], %[[Z]], %{{.*}}, %{{.*}}) {module = "safe"}
// VNNI:         onednn.dynamic_linear(%[[Q]], %[[S]], %[[Z]], %{{.*}}, %{{.*}}) {module = "risky"}
// VNNI-NOT:     quant.dynamic_dcast
// VNNI-LABEL: func.func @per_token(
// VNNI:         onednn.choose_qparams(%x) {quantized_type = !quant.any<i8<-127:127>:f32>, symmetric} : (tensor<2x3x4xf32>) -> (tensor<2x3x1xf32>, tensor<2x3x1xi64>)
// VNNI:         onednn.dynamic_linear({{.*}}) {module = "safe"} : (tensor<2x3x4x!quant.any<i8<-127:127>:f32>>, tensor<2x3x1xf32>, tensor<2x3x1xi64>, {{.*}}) -> tensor<2x3x2xf32>

// AVX2: builtin.module attributes {qir.stage = "lowered", qir.target = "x86-avx2", qir.backend = "onednn"}
// AVX2-LABEL: func.func @per_tensor(
// AVX2:         %[[DQ:.*]] = quant.dynamic_dcast
// AVX2:         onednn.dynamic_linear({{.*}}) {module = "safe"}
// AVX2:         aten.op "linear.default"(%[[DQ]], {{.*}}) {module = "risky"}
// AVX2-LABEL: func.func @per_token(
// AVX2:         onednn.dynamic_linear({{.*}}) {module = "safe"}

builtin.module attributes {qir.stage = "quantized"} {
  func.func @per_tensor(%x: tensor<3x4xf32>) -> (tensor<3x2xf32>, tensor<3x2xf32>) {
    %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<u8:f32>} : tensor<3x4xf32> -> (tensor<f32>, tensor<i64>)
    %q = quant.dynamic_qcast %x, %s, %z : (tensor<3x4xf32>, tensor<f32>, tensor<i64>) -> tensor<3x4x!quant.any<u8:f32>>
    %dq = quant.dynamic_dcast %q, %s, %z : (tensor<3x4x!quant.any<u8:f32>>, tensor<f32>, tensor<i64>) -> tensor<3x4xf32>
    %b = aten.param constant "bias" : tensor<2xf32>
    %w = aten.param constant "safe" : tensor<2x4x!w>
    %w_dq = quant.dcast %w : tensor<2x4x!w> to tensor<2x4xf32>
    %y = aten.op "linear.default"(%dq, %w_dq, %b) {module = "safe"} : (tensor<3x4xf32>, tensor<2x4xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    %r = aten.param constant "risky" : tensor<2x4x!w>
    %r_dq = quant.dcast %r : tensor<2x4x!w> to tensor<2x4xf32>
    %y2 = aten.op "linear.default"(%dq, %r_dq, %b) {module = "risky"} : (tensor<3x4xf32>, tensor<2x4xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    func.return %y, %y2 : tensor<3x2xf32>, tensor<3x2xf32>
  }

  func.func @per_token(%x: tensor<2x3x4xf32>) -> tensor<2x3x2xf32> {
    %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<i8<-127:127>:f32>, symmetric} : tensor<2x3x4xf32> -> (tensor<2x3x1xf32>, tensor<2x3x1xi64>)
    %q = quant.dynamic_qcast %x, %s, %z : (tensor<2x3x4xf32>, tensor<2x3x1xf32>, tensor<2x3x1xi64>) -> tensor<2x3x4x!quant.any<i8<-127:127>:f32>>
    %dq = quant.dynamic_dcast %q, %s, %z : (tensor<2x3x4x!quant.any<i8<-127:127>:f32>>, tensor<2x3x1xf32>, tensor<2x3x1xi64>) -> tensor<2x3x4xf32>
    %w = aten.param constant "safe" : tensor<2x4x!w>
    %w_dq = quant.dcast %w : tensor<2x4x!w> to tensor<2x4xf32>
    %y = aten.op "linear.default"(%dq, %w_dq) {module = "safe"} : (tensor<2x3x4xf32>, tensor<2x4xf32>) -> tensor<2x3x2xf32>
    func.return %y : tensor<2x3x2xf32>
  }
}
