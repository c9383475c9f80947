// RUN: qir-opt %s -p reference-rewrite | filecheck %s

// Ops that only move elements run on the quantized value itself (exact: input and output share
// their parameters); a dequantize follows for whoever reads float. A quantize of a dequantize
// folds: to the same type it is the value, to other per-tensor parameters ref.requantize.

!u = !quant.uniform<u8:f32, 5.000000e-02:128>
!v = !quant.uniform<u8:f32, 2.500000e-02:3>

builtin.module attributes {qir.stage = "quantized"} {
  // CHECK-LABEL: func.func @views(
  // CHECK-NEXT:    %[[X:.*]] = quant.qcast %x
  // CHECK-NEXT:    %[[V:.*]] = aten.op "view.default"(%[[X]], [%n, 8]) : (tensor<?x2x4x!quant.uniform<u8:f32, 5.000000e-02:128>>, i64) -> tensor<?x8x!quant.uniform<u8:f32, 5.000000e-02:128>>
  // CHECK-NEXT:    %[[P:.*]] = aten.op "permute.default"(%[[V]], [1, 0]) : (tensor<?x8x!quant.uniform<u8:f32, 5.000000e-02:128>>) -> tensor<8x?x!quant.uniform<u8:f32, 5.000000e-02:128>>
  // CHECK-NEXT:    %[[S0:[a-z0-9_]+]], %[[S1:[a-z0-9_]+]] = aten.op "split.Tensor"(%[[P]], 4) : (tensor<8x?x!quant.uniform<u8:f32, 5.000000e-02:128>>) -> (tensor<4x?x!quant.uniform<u8:f32, 5.000000e-02:128>>, tensor<4x?x!quant.uniform<u8:f32, 5.000000e-02:128>>)
  // CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[S1]]
  // CHECK-NEXT:    %[[R:.*]] = ref.requantize(%[[S0]]) : (tensor<4x?x!quant.uniform<u8:f32, 5.000000e-02:128>>) -> tensor<4x?x!quant.uniform<u8:f32, 2.500000e-02:3>>
  // CHECK-NEXT:    %[[RD:.*]] = quant.dcast %[[R]]
  // CHECK-NEXT:    %[[E:.*]] = aten.op "exp.default"(%[[D]])
  // CHECK-NEXT:    func.return %[[RD]], %[[E]]
  func.func @views(%x: tensor<?x2x4xf32>, %n: i64) -> (tensor<4x?xf32>, tensor<4x?xf32>) {
    %x_q = quant.qcast %x : tensor<?x2x4xf32> to tensor<?x2x4x!u>
    %x_dq = quant.dcast %x_q : tensor<?x2x4x!u> to tensor<?x2x4xf32>
    %v = aten.op "view.default"(%x_dq, [%n, 8]) : (tensor<?x2x4xf32>, i64) -> tensor<?x8xf32>
    %v_q = quant.qcast %v : tensor<?x8xf32> to tensor<?x8x!u>
    %v_dq = quant.dcast %v_q : tensor<?x8x!u> to tensor<?x8xf32>
    %p = aten.op "permute.default"(%v_dq, [1, 0]) : (tensor<?x8xf32>) -> tensor<8x?xf32>
    %s:2 = aten.op "split.Tensor"(%p, 4) : (tensor<8x?xf32>) -> (tensor<4x?xf32>, tensor<4x?xf32>)
    %a_q = quant.qcast %s#0 : tensor<4x?xf32> to tensor<4x?x!v>
    %a_dq = quant.dcast %a_q : tensor<4x?x!v> to tensor<4x?xf32>
    %e = aten.op "exp.default"(%s#1) : (tensor<4x?xf32>) -> tensor<4x?xf32>
    func.return %a_dq, %e : tensor<4x?xf32>, tensor<4x?xf32>
  }

  // max_pool2d runs on the storage; max_pool1d has no integer kernel in torch, so on the storage
  // it is a max_pool2d over a unit height.
  // CHECK-LABEL: func.func @max_pools(
  // CHECK-NEXT:    %[[X:.*]] = quant.qcast %x
  // CHECK-NEXT:    %[[M:.*]] = aten.op "max_pool2d.default"(%[[X]], [2, 2], [2, 2], [0, 0], [1, 1], true) : (tensor<1x3x5x5x!quant.uniform<u8:f32, 5.000000e-02:128>>) -> tensor<1x3x3x3x!quant.uniform<u8:f32, 5.000000e-02:128>>
  // CHECK-NEXT:    %[[F:.*]] = aten.op "flatten.using_ints"(%[[M]], 2)
  // CHECK-NEXT:    %[[U:.*]] = aten.op "unsqueeze.default"(%[[F]], -2) : (tensor<1x3x9x!quant.uniform<u8:f32, 5.000000e-02:128>>) -> tensor<1x3x1x9x!quant.uniform<u8:f32, 5.000000e-02:128>>
  // CHECK-NEXT:    %[[M2:.*]] = aten.op "max_pool2d.default"(%[[U]], [1, 3], [1, 2], [0, 1], [1, 1], false) {module = "pool"} : (tensor<1x3x1x9x!quant.uniform<u8:f32, 5.000000e-02:128>>) -> tensor<1x3x1x5x!quant.uniform<u8:f32, 5.000000e-02:128>>
  // CHECK-NEXT:    %[[Q:.*]] = aten.op "squeeze.dim"(%[[M2]], -2) : (tensor<1x3x1x5x!quant.uniform<u8:f32, 5.000000e-02:128>>) -> tensor<1x3x5x!quant.uniform<u8:f32, 5.000000e-02:128>>
  // CHECK-NEXT:    %[[D:.*]] = quant.dcast %[[Q]]
  // CHECK-NEXT:    func.return %[[D]]
  func.func @max_pools(%x: tensor<1x3x5x5xf32>) -> tensor<1x3x5xf32> {
    %x_q = quant.qcast %x : tensor<1x3x5x5xf32> to tensor<1x3x5x5x!u>
    %x_dq = quant.dcast %x_q : tensor<1x3x5x5x!u> to tensor<1x3x5x5xf32>
    %m = aten.op "max_pool2d.default"(%x_dq, [2, 2], [2, 2], [0, 0], [1, 1], true) : (tensor<1x3x5x5xf32>) -> tensor<1x3x3x3xf32>
    %f = aten.op "flatten.using_ints"(%m, 2) : (tensor<1x3x3x3xf32>) -> tensor<1x3x9xf32>
    %m1 = aten.op "max_pool1d.default"(%f, [3], [2], [1]) {module = "pool"} : (tensor<1x3x9xf32>) -> tensor<1x3x5xf32>
    %m1_q = quant.qcast %m1 : tensor<1x3x5xf32> to tensor<1x3x5x!u>
    %m1_dq = quant.dcast %m1_q : tensor<1x3x5x!u> to tensor<1x3x5xf32>
    func.return %m1_dq : tensor<1x3x5xf32>
  }

  // Not sunk: a per-channel quantized value (a view would move its channel axis), an in-place
  // view, a data movement mixing in another float tensor.
  // CHECK-LABEL: func.func @not_sunk(
  // CHECK:         %[[WD:.*]] = quant.dcast %w
  // CHECK-NEXT:    aten.op "t.default"(%[[WD]]) : (tensor<2x3xf32>)
  // CHECK:         aten.op "unsqueeze_.default"(%{{.*}}, 0) : (tensor<4xf32>)
  // CHECK-NEXT:    aten.op "index_put.default"(%{{.*}}, [%{{.*}}], %{{.*}}) : (tensor<4xf32>, tensor<2xi64>, tensor<2xf32>)
  func.func @not_sunk(%w: tensor<2x3x!quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01}>>, %x: tensor<4xf32>, %i: tensor<2xi64>, %y: tensor<2xf32>) -> (tensor<3x2xf32>, tensor<1x4xf32>, tensor<4xf32>) {
    %w_dq = quant.dcast %w : tensor<2x3x!quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01}>> to tensor<2x3xf32>
    %t = aten.op "t.default"(%w_dq) : (tensor<2x3xf32>) -> tensor<3x2xf32>
    %x_q = quant.qcast %x : tensor<4xf32> to tensor<4x!u>
    %x_dq = quant.dcast %x_q : tensor<4x!u> to tensor<4xf32>
    %u = aten.op "unsqueeze_.default"(%x_dq, 0) : (tensor<4xf32>) -> tensor<1x4xf32>
    %p = aten.op "index_put.default"(%x_dq, [%i], %y) : (tensor<4xf32>, tensor<2xi64>, tensor<2xf32>) -> tensor<4xf32>
    func.return %t, %u, %p : tensor<3x2xf32>, tensor<1x4xf32>, tensor<4xf32>
  }
}
