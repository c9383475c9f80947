// RUN: qir-opt %s -p canonicalize | filecheck %s
// RUN: qir-opt %s -p 'canonicalize{keep-detach=true}' | filecheck %s --check-prefix=KEEP

// Nothing here is a no-op, though each looks like one.

// A copy that a later `view` needs: `transpose(x).contiguous().view(-1)`.
// CHECK-LABEL: func.func @forward(
// CHECK-NEXT:    %[[T:.*]] = aten.op "transpose.int"
// CHECK-NEXT:    %[[C:.*]] = aten.op "contiguous.default"(%[[T]])
// CHECK-NEXT:    %[[V:.*]] = aten.op "view.default"(%[[C]], [-1])
// CHECK-NEXT:    func.return %[[V]]
func.func @forward(%x: tensor<2x4xf32>) -> tensor<8xf32> {
  %t = aten.op "transpose.int"(%x, 0, 1) : (tensor<2x4xf32>) -> tensor<4x2xf32>
  %c = aten.op "contiguous.default"(%t) : (tensor<4x2xf32>) -> tensor<4x2xf32>
  %v = aten.op "view.default"(%c, [-1]) : (tensor<4x2xf32>) -> tensor<8xf32>
  func.return %v : tensor<8xf32>
}

// Copies that change the layout: of a broadcast (stride 0) tensor, to another
// memory format; a dtype that changes; a device the IR cannot see.
// CHECK-LABEL: func.func @copies(
// CHECK:         aten.op "expand.default"
// CHECK-NEXT:    aten.op "clone.default"
// CHECK-NEXT:    aten.op "clone.default"(%{{.*}}, memory_format = #aten.memory_format<channels_last>)
// CHECK-NEXT:    aten.op "clone.default"(%{{.*}}, memory_format = #aten.memory_format<contiguous_format>)
// CHECK-NEXT:    aten.op "to.dtype"(%{{.*}}, #aten.dtype<float16>)
// CHECK-NEXT:    aten.op "to.dtype"(%{{.*}}, #aten.dtype<float32>, memory_format = #aten.memory_format<channels_last>)
// CHECK-NEXT:    aten.op "to.dtype_layout"(%{{.*}}, dtype = #aten.dtype<float32>, device = #aten.device<cpu>)
// CHECK-NEXT:    aten.op "_to_copy.default"(%{{.*}}, device = #aten.device<cpu>)
// CHECK-NEXT:    aten.op "to.device"
func.func @copies(%x: tensor<1x2x3x3xf32>, %r: tensor<1x1x3x3xf32>) -> (tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf16>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>) {
  %e = aten.op "expand.default"(%r, [1, 2, 3, 3]) : (tensor<1x1x3x3xf32>) -> tensor<1x2x3x3xf32>
  %a = aten.op "clone.default"(%e) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %b = aten.op "clone.default"(%x, memory_format = #aten.memory_format<channels_last>) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %c = aten.op "clone.default"(%x, memory_format = #aten.memory_format<contiguous_format>) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %d = aten.op "to.dtype"(%x, #aten.dtype<float16>) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf16>
  %f = aten.op "to.dtype"(%x, #aten.dtype<float32>, memory_format = #aten.memory_format<channels_last>) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %g = aten.op "to.dtype_layout"(%x, dtype = #aten.dtype<float32>, device = #aten.device<cpu>) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %h = aten.op "_to_copy.default"(%x, device = #aten.device<cpu>) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %i = aten.op "to.device"(%x, #aten.device<cpu>, #aten.dtype<float32>) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  func.return %a, %b, %c, %d, %f, %g, %h, %i : tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf16>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>
}

// A copy whose source or result is written in place, or a copy of a buffer
// that `aten.param_update` writes back, is a real copy.
// CHECK-LABEL: func.func @written(
// CHECK-NEXT:    %[[B:.*]] = aten.param buffer "count"
// CHECK-NEXT:    %[[C1:.*]] = aten.op "clone.default"(%[[X:.*]]) :
// CHECK-NEXT:    aten.op "add_.Tensor"(%[[X]], 1.0)
// CHECK-NEXT:    %[[C2:.*]] = aten.op "clone.default"(%[[Y:.*]]) :
// CHECK-NEXT:    aten.op "relu_.default"(%[[C2]])
// CHECK-NEXT:    %[[C3:.*]] = aten.op "clone.default"(%[[B]])
// CHECK-NEXT:    %[[N:.*]] = aten.op "add.Tensor"(%[[B]], 1.0)
// CHECK-NEXT:    aten.param_update "count", %[[N]]
// CHECK-NEXT:    func.return %[[C1]], %[[C2]], %[[C3]]
func.func @written(%x: tensor<4xf32>, %y: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %b = aten.param buffer "count" = dense<0.0> : tensor<4xf32>
  %c1 = aten.op "clone.default"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  %w1 = aten.op "add_.Tensor"(%x, 1.0) : (tensor<4xf32>) -> tensor<4xf32>
  %c2 = aten.op "clone.default"(%y) : (tensor<4xf32>) -> tensor<4xf32>
  %w2 = aten.op "relu_.default"(%c2) : (tensor<4xf32>) -> tensor<4xf32>
  %c3 = aten.op "clone.default"(%b) : (tensor<4xf32>) -> tensor<4xf32>
  %n = aten.op "add.Tensor"(%b, 1.0) : (tensor<4xf32>) -> tensor<4xf32>
  aten.param_update "count", %n : tensor<4xf32>
  func.return %c1, %c2, %c3 : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// Training-mode `batch_norm` updates its running statistics in place, though
// its schema does not say so: unused, it stays, and so does a copy of a
// statistic. In eval mode it is pure and goes when unused.
// CHECK-LABEL: func.func @batch_norm_training(
// CHECK-NEXT:    %[[M:.*]] = aten.param buffer "bn.running_mean"
// CHECK-NEXT:    aten.param buffer "bn.running_var"
// CHECK-NEXT:    aten.op "batch_norm.default"(%{{.*}}, true, 0.1, 1.0e-05, false)
// CHECK-NEXT:    %[[C:.*]] = aten.op "clone.default"(%[[M]])
// CHECK-NEXT:    func.return %[[C]]
func.func @batch_norm_training(%x: tensor<6x4xf32>) -> tensor<4xf32> {
  %m = aten.param buffer "bn.running_mean" = dense<0.0> : tensor<4xf32>
  %v = aten.param buffer "bn.running_var" = dense<1.0> : tensor<4xf32>
  %y = aten.op "batch_norm.default"(%x, none, none, %m, %v, true, 0.1, 1.0e-05, false) : (tensor<6x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<6x4xf32>
  %z = aten.op "batch_norm.default"(%x, none, none, %m, %v, false, 0.1, 1.0e-05, false) : (tensor<6x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<6x4xf32>
  %c = aten.op "clone.default"(%m) : (tensor<4xf32>) -> tensor<4xf32>
  func.return %c : tensor<4xf32>
}

// Views that change the shape, or whose shape is only known at run time.
// CHECK-LABEL: func.func @views(
// CHECK-NEXT:    aten.op "sym_size.int"
// CHECK-NEXT:    aten.op "view.default"(%{{.*}}, [%{{.*}}, 4]) : (tensor<?x4xf32>, i64) -> tensor<?x4xf32>
// CHECK-NEXT:    aten.op "permute.default"(%{{.*}}, [0, 2, 1])
// CHECK-NEXT:    aten.op "transpose.int"(%{{.*}}, 0, 1)
// CHECK-NEXT:    aten.op "transpose.int"(%{{.*}}, 1, 2)
// CHECK-NEXT:    aten.op "expand.default"(%{{.*}}, [2, 3, 4])
// CHECK-NEXT:    func.return
func.func @views(%d: tensor<?x4xf32>, %x: tensor<2x3x4xf32>, %o: tensor<1x4xf32>) -> (tensor<?x4xf32>, tensor<2x4x3xf32>, tensor<3x4x2xf32>, tensor<2x3x4xf32>) {
  %n = aten.op "sym_size.int"(%d, 0) : (tensor<?x4xf32>) -> i64
  %v = aten.op "view.default"(%d, [%n, 4]) : (tensor<?x4xf32>, i64) -> tensor<?x4xf32>
  %p = aten.op "permute.default"(%x, [0, 2, 1]) : (tensor<2x3x4xf32>) -> tensor<2x4x3xf32>
  %t1 = aten.op "transpose.int"(%x, 0, 1) : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
  %t2 = aten.op "transpose.int"(%t1, 1, 2) : (tensor<3x2x4xf32>) -> tensor<3x4x2xf32>
  %e = aten.op "expand.default"(%o, [2, 3, 4]) : (tensor<1x4xf32>) -> tensor<2x3x4xf32>
  func.return %v, %p, %t2, %e : tensor<?x4xf32>, tensor<2x4x3xf32>, tensor<3x4x2xf32>, tensor<2x3x4xf32>
}

// Dropout in training mode draws random numbers: it stays.
// CHECK-LABEL: func.func @train_dropout(
// CHECK-NEXT:    aten.op "dropout.default"(%{{.*}}, 0.5, true)
func.func @train_dropout(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %d = aten.op "dropout.default"(%x, 0.5, true) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %d : tensor<2x4xf32>
}

// `detach` is an identity in value; `keep-detach` keeps it for training (QAT),
// where it stops gradients.
// CHECK-LABEL: func.func @detach(
// CHECK-NOT:     aten.op "detach.default"
// KEEP-LABEL:  func.func @detach(
// KEEP-NEXT:     aten.op "detach.default"
func.func @detach(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %d = aten.op "detach.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %d : tensor<2x4xf32>
}

// The same computation written twice is `cse`'s to merge, not canonicalize's.
// CHECK-LABEL: func.func @duplicates(
// CHECK-NEXT:    aten.param parameter "w"
// CHECK-NEXT:    aten.param parameter "w"
// CHECK-NEXT:    aten.op "relu.default"(%x)
// CHECK-NEXT:    aten.op "relu.default"(%x)
func.func @duplicates(%x: tensor<2x4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %w = aten.param parameter "w" = dense<1.0> : tensor<4xf32>
  %w2 = aten.param parameter "w" = dense<1.0> : tensor<4xf32>
  %a = aten.op "relu.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %b = aten.op "relu.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %w, %w2, %a, %b : tensor<4xf32>, tensor<4xf32>, tensor<2x4xf32>, tensor<2x4xf32>
}
