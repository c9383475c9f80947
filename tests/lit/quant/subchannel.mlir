// RUN: qir-opt %s --split-input-file | filecheck %s
// RUN: qir-opt %s --split-input-file | qir-opt --split-input-file | filecheck %s

// Sub-channel (group-wise) types, in MLIR's text: the block sizes of the quantized
// dimensions, then a table of scale:zero_point pairs with one entry per block.

// CHECK-LABEL: func.func @groups_of_32(
// CHECK-SAME:    %{{.*}}: tensor<2x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{\{}}{2.000000e-02:8, 3.000000e-02:7}, {1.000000e-02:8, 4.000000e-02}}>>
// CHECK-NEXT:    quant.dcast %{{.*}} : tensor<2x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{\{}}{2.000000e-02:8, 3.000000e-02:7}, {1.000000e-02:8, 4.000000e-02}}>> to tensor<2x64xf32>
// CHECK-NEXT:    quant.scast %{{.*}} : tensor<2x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{.*}}>> to tensor<2x64xi4>
func.func @groups_of_32(%w: tensor<2x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{0.02:8, 0.03:7}, {0.01:8, 0.04:0}}>>) -> (tensor<2x64xf32>, tensor<2x64xi4>) {
  %d = quant.dcast %w : tensor<2x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{0.02:8, 0.03:7}, {0.01:8, 0.04:0}}>> to tensor<2x64xf32>
  %i = quant.scast %w : tensor<2x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{0.02:8, 0.03:7}, {0.01:8, 0.04:0}}>> to tensor<2x64xi4>
  func.return %d, %i : tensor<2x64xf32>, tensor<2x64xi4>
}

// -----

// MLIR's own examples: mixed affine and symmetric entries, an empty block list (the
// block sizes are then the tensor's sizes over the table's), and a rank-4 table.
// CHECK-LABEL: func.func @mlir_forms(
// CHECK-SAME:    !quant.uniform<u8:f32:{0:1, 1:2}, {{\{}}{2.000000e+00:120, 3.000000e+00:127}, {4.000000e+00, 5.000000e+00}}>
// CHECK-SAME:    !quant.uniform<u8:f32:{}, {{\{}}{2.000000e+00:120, 3.000000e+00:127}, {4.000000e+00, 5.000000e+00}}>
// CHECK-SAME:    !quant.uniform<i8:f32:{0:1, 3:2}, {{\{\{\{}}{2.000000e+00:10, 3.000000e+00:20}}}, {{\{\{}}{4.000000e+00:30, 5.000000e+00:40}}}}>
func.func @mlir_forms(%a: tensor<2x4x!quant.uniform<u8:f32:{0:1, 1:2}, {{2.0:120,3.0:127}, {4.0,5.0}}>>,
                      %b: tensor<2x8x!quant.uniform<u8:f32:{}, {{2.0:120,3.0:127}, {4.0,5.0}}>>,
                      %c: tensor<2x3x5x4x!quant.uniform<i8:f32:{0:1, 3:2}, {{{{2.0:10, 3.0:20}}}, {{{4.0:30, 5.0:40}}}}>>) {
  func.return
}
