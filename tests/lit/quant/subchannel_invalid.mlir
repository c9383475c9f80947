// RUN: qir-opt %s --split-input-file --verify-diagnostics

// Sub-channel types are verified alone (table, block sizes, scales, zero points) and against
// the tensor that holds them (one table entry per block).

func.func @wrong_block_count(%w: tensor<2x48x!quant.uniform<u4:f32:{0:1, 1:32}, {{0.02:8, 0.03:7}, {0.01:8, 0.04:0}}>>) {
  // expected-error@+1 {{dimension 1 of size 48 is not 2 blocks of 32}}
  %d = quant.dcast %w : tensor<2x48x!quant.uniform<u4:f32:{0:1, 1:32}, {{0.02:8, 0.03:7}, {0.01:8, 0.04:0}}>> to tensor<2x48xf32>
  func.return
}

// -----

func.func @wrong_rank(%w: tensor<64x!quant.uniform<u4:f32:{1:32}, {{0.02:8, 0.03:7}}>>) {
  // expected-error@+1 {{a sub-channel table of rank 2 for a tensor of rank 1}}
  %d = quant.dcast %w : tensor<64x!quant.uniform<u4:f32:{1:32}, {{0.02:8, 0.03:7}}>> to tensor<64xf32>
  func.return
}

// -----

// expected-error@+1 {{sub-channel scales must form a rectangular table}}
func.func private @ragged() -> !quant.uniform<u8:f32:{0:1, 1:2}, {{2.0:120, 3.0:127}, {4.0}}>

// -----

// expected-error@+1 {{zero point 16 is outside the storage range [0, 15]}}
func.func private @zero_point_beyond_u4() -> !quant.uniform<u4:f32:{0:1, 1:2}, {{2.0:1, 3.0:16}}>

// -----

// expected-error@+1 {{illegal quantized dimension: 2 (the table has rank 2)}}
func.func private @dimension_beyond_table() -> !quant.uniform<u4:f32:{0:1, 2:2}, {{2.0:1, 3.0:1}}>

// -----

// expected-error@+1 {{scale must be positive and finite, got -2.0}}
func.func private @negative_scale() -> !quant.uniform<u4:f32:{0:1, 1:2}, {{-2.0:1, 3.0:1}}>

// -----

// expected-error@+1 {{illegal block size 0 for dimension 1}}
func.func private @zero_block() -> !quant.uniform<u4:f32:{0:1, 1:0}, {{2.0:1, 3.0:1}}>
