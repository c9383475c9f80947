// RUN: qir-opt %s -p 'lower-x86{target=x86-avx512-vnni}' | filecheck %s --check-prefixes=CHECK,VNNI
// RUN: qir-opt %s -p 'lower-x86{target=x86-avx2}' | filecheck %s --check-prefixes=CHECK,AVX2
// Weights: linear_engine.safetensors beside this file (random, seeded, under 64 in magnitude so that
// their int16 pairs cannot saturate and x86-avx2 takes them).

// The engine a requantizing linear's weights are packed for (qir.lowering.x86.engines): fbgemm for
// a product under 2**21 multiply-adds or for few rows (8 with VNNI, 32 without), oneDNN above,
// and oneDNN when the row count is not static.

!x = !quant.uniform<u8:f32, 2.000000e-02:128>
!y = !quant.uniform<u8:f32, 1.000000e-02:7>
!w = !quant.uniform<i8:f32, 1.000000e-03>

builtin.module attributes {qir.stage = "reference"} {
  // CHECK-LABEL: func.func @engines(
  // CHECK:         %[[BIG:.*]] = x86.linear_prepack({{.*}}) {engine = "onednn", {{.*}}module = "big"}
  // CHECK-NEXT:    x86.linear(%big, %[[BIG]])
  // VNNI:          %[[ROWS32:.*]] = x86.linear_prepack({{.*}}) {engine = "onednn", {{.*}}module = "rows32"}
  // AVX2:          %[[ROWS32:.*]] = x86.linear_prepack({{.*}}) {engine = "fbgemm", {{.*}}module = "rows32"}
  // CHECK-NEXT:    x86.linear(%rows32, %[[ROWS32]])
  // CHECK:         %[[ROWS8:.*]] = x86.linear_prepack({{.*}}) {engine = "fbgemm", {{.*}}module = "rows8"}
  // CHECK-NEXT:    x86.linear_relu(%rows8, %[[ROWS8]])
  // CHECK:         %[[DYN:.*]] = x86.linear_prepack({{.*}}) {engine = "onednn", {{.*}}module = "dynamic"}
  // CHECK-NEXT:    x86.linear(%dynamic, %[[DYN]])
  // CHECK:         %[[SMALL:.*]] = x86.linear_prepack({{.*}}) {engine = "fbgemm", {{.*}}module = "small"}
  // CHECK-NEXT:    x86.linear(%small, %[[SMALL]])
  // CHECK-NOT:     ref.linear
  func.func @engines(%big: tensor<4096x2048x!x>, %rows32: tensor<32x2048x!x>, %rows8: tensor<2x4x2048x!x>,
                     %dynamic: tensor<?x2048x!x>, %small: tensor<64x64x!x>)
      -> (tensor<4096x32x!y>, tensor<32x32x!y>, tensor<2x4x32x!y>, tensor<?x32x!y>, tensor<64x8x!y>) {
    %w = aten.param parameter "wide.weight_q" : tensor<32x2048x!w>
    %b = aten.param parameter "wide.bias" : tensor<32xf32>
    %nw = aten.param parameter "narrow.weight_q" : tensor<8x64x!w>
    %nb = aten.param parameter "narrow.bias" : tensor<8xf32>
    %0 = ref.linear(%big, %w, %b) {module = "big"} : (tensor<4096x2048x!x>, tensor<32x2048x!w>, tensor<32xf32>) -> tensor<4096x32x!y>
    %1 = ref.linear(%rows32, %w, %b) {module = "rows32"} : (tensor<32x2048x!x>, tensor<32x2048x!w>, tensor<32xf32>) -> tensor<32x32x!y>
    %2 = ref.linear(%rows8, %w, %b) {module = "rows8", post = "relu"} : (tensor<2x4x2048x!x>, tensor<32x2048x!w>, tensor<32xf32>) -> tensor<2x4x32x!y>
    %3 = ref.linear(%dynamic, %w, %b) {module = "dynamic"} : (tensor<?x2048x!x>, tensor<32x2048x!w>, tensor<32xf32>) -> tensor<?x32x!y>
    %4 = ref.linear(%small, %nw, %nb) {module = "small"} : (tensor<64x64x!x>, tensor<8x64x!w>, tensor<8xf32>) -> tensor<64x8x!y>
    func.return %0, %1, %2, %3, %4 : tensor<4096x32x!y>, tensor<32x32x!y>, tensor<2x4x32x!y>, tensor<?x32x!y>, tensor<64x8x!y>
  }
}
