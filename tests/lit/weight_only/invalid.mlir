// RUN: qir-opt %s --split-input-file --verify-diagnostics

// The weight-only specs and ops are verified: a per-group spec and its block size go together,
// a cast spec stores f16 or bf16, and the weight-only ops take float activations and a weight
// with its parameters (or float16).

// expected-error@+1 {{per_group_minmax observers, and only they, take a block size (positive)}}
func.func private @block_without_groups() attributes {s = #obs.spec<u4[0:15], affine, per_channel_minmax, axis 0, block 32>}

// -----

// expected-error@+1 {{groups of a per_group_minmax spec run along the rows of axis 0, not axis 1}}
func.func private @groups_along_columns() attributes {s = #obs.spec<u4[0:15], affine, per_group_minmax, axis 1, block 32>}

// -----

// expected-error@+1 {{expected f16 or bf16, got 'f8'}}
func.func private @cast_to_f8() attributes {s = #obs.cast<f8>}

// -----

func.func @groups_do_not_divide(%w: tensor<4x48xf32>) {
  // expected-error@+1 {{groups of 32 need a 2-d value whose rows they divide}}
  %o = obs.observe %w {id = "obs0", spec = #obs.spec<u4[0:15], affine, per_group_minmax, axis 0, block 32, group 0>} : tensor<4x48xf32>
  func.return
}

// -----

func.func @quantized_activation(%x: tensor<2x8x!quant.uniform<u8:f32, 0.1>>, %w: tensor<4x8x!quant.uniform<i8:f32:0, {0.1,0.1,0.1,0.1}>>) {
  // expected-error@+1 {{ref.weight_only_linear: the input must be float32}}
  %y = ref.weight_only_linear(%x, %w) : (tensor<2x8x!quant.uniform<u8:f32, 0.1>>, tensor<4x8x!quant.uniform<i8:f32:0, {0.1,0.1,0.1,0.1}>>) -> tensor<2x4xf32>
  func.return
}

// -----

func.func @per_column_weight(%x: tensor<2x8xf32>, %w: tensor<4x8x!quant.uniform<i8:f32:1, {0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1}>>) {
  // expected-error@+1 {{ref.weight_only_linear: a per-axis weight is quantized per row (axis 0), not along axis 1}}
  %y = ref.weight_only_linear(%x, %w) : (tensor<2x8xf32>, tensor<4x8x!quant.uniform<i8:f32:1, {0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1}>>) -> tensor<2x4xf32>
  func.return
}

// -----

func.func @wrong_result(%x: tensor<2x8xf32>, %w: tensor<4x8xf16>) {
  // expected-error@+1 {{ref.weight_only_linear: a tensor<2x8xf32> by a tensor<4x8xf16> weight does not give tensor<2x5xf32>}}
  %y = ref.weight_only_linear(%x, %w) : (tensor<2x8xf32>, tensor<4x8xf16>) -> tensor<2x5xf32>
  func.return
}

// -----

func.func @table_in_blocks(%w: tensor<4x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{0.1, 0.1}, {0.1, 0.1}, {0.1, 0.1}, {0.1, 0.1}}>>, %i: tensor<3xi64>) {
  // expected-error@+1 {{ref.weight_only_embedding: a table is quantized per tensor or per row, not in blocks}}
  %e = ref.weight_only_embedding(%w, %i) : (tensor<4x64x!quant.uniform<u4:f32:{0:1, 1:32}, {{0.1, 0.1}, {0.1, 0.1}, {0.1, 0.1}, {0.1, 0.1}}>>, tensor<3xi64>) -> tensor<3x64xf32>
  func.return
}

// -----

func.func @bag_mode(%ids: tensor<6xi64>, %offsets: tensor<2xi64>, %t: tensor<3x4x!quant.uniform<u8:f32:0, {0.1,0.1,0.1}>>) {
  // expected-error@+1 {{ref.weight_only_embedding_bag: mode is one of sum, mean, max, not 'prod'}}
  %b = ref.weight_only_embedding_bag(%t, %ids, %offsets) {mode = "prod"} : (tensor<3x4x!quant.uniform<u8:f32:0, {0.1,0.1,0.1}>>, tensor<6xi64>, tensor<2xi64>) -> tensor<2x4xf32>
  func.return
}

// -----

func.func @weighted_mean(%ids: tensor<6xi64>, %offsets: tensor<2xi64>, %w: tensor<6xf32>, %t: tensor<3x4x!quant.uniform<u8:f32:0, {0.1,0.1,0.1}>>) {
  // expected-error@+1 {{ref.weight_only_embedding_bag: per_sample_weights scale the rows of sums only, not of a mean}}
  %b = ref.weight_only_embedding_bag(%t, %ids, %offsets, %w) {mode = "mean"} : (tensor<3x4x!quant.uniform<u8:f32:0, {0.1,0.1,0.1}>>, tensor<6xi64>, tensor<2xi64>, tensor<6xf32>) -> tensor<2x4xf32>
  func.return
}

// -----

func.func @bag_count(%ids: tensor<6xi64>, %offsets: tensor<3xi64>, %t: tensor<3x4x!quant.uniform<u8:f32:0, {0.1,0.1,0.1}>>) {
  // expected-error@+1 {{ref.weight_only_embedding_bag: tensor<3xi64> offsets in a tensor<3x4x!quant.uniform<u8:f32:0, {1.000000e-01,1.000000e-01,1.000000e-01}>> table give [2, 4] bags, not tensor<3x4xf32>}}
  %b = ref.weight_only_embedding_bag(%t, %ids, %offsets) {mode = "sum", include_last_offset = true} : (tensor<3x4x!quant.uniform<u8:f32:0, {0.1,0.1,0.1}>>, tensor<6xi64>, tensor<3xi64>) -> tensor<3x4xf32>
  func.return
}
