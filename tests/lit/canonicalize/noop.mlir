// RUN: qir-opt %s -p canonicalize | filecheck %s

// What an eval-mode export leaves between two layers: dropout, a clone, a
// detach, a cast to the dtype the tensor has, a reshape to its own shape.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME:      %[[X:[^:]*]]: tensor<2x4xf32>
// CHECK-NEXT:    %[[W:.*]] = aten.param constant "w"
// CHECK-NEXT:    %[[Y:.*]] = aten.op "linear.default"(%[[X]], %[[W]])
// CHECK-NEXT:    %[[R:.*]] = aten.op "relu.default"(%[[Y]])
// CHECK-NEXT:    func.return %[[R]] : tensor<2x4xf32>
func.func @forward(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %w = aten.param constant "w" = dense<1.0> : tensor<4x4xf32>
  %y = aten.op "linear.default"(%x, %w) : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %d = aten.op "dropout.default"(%y, 0.5, false) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %c = aten.op "clone.default"(%d) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %t = aten.op "detach.default"(%c) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %f = aten.op "to.dtype"(%t, #aten.dtype<float32>) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %v = aten.op "reshape.default"(%f, [2, 4]) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %r = aten.op "relu.default"(%v) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %r : tensor<2x4xf32>
}

// Dropout in eval mode, or with p = 0, returns its input and draws nothing.
// CHECK-LABEL: func.func @dropouts(
// CHECK-SAME:      %[[X:[^:]*]]: tensor<1x2x3x3xf32>
// CHECK-NOT:     dropout
// CHECK:         func.return %[[X]], %[[X]], %[[X]], %[[X]], %[[X]] :
func.func @dropouts(%x: tensor<1x2x3x3xf32>) -> (tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>) {
  %a = aten.op "dropout.default"(%x, 0.5, false) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %b = aten.op "dropout.default"(%x, 0.0, true) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %c = aten.op "feature_dropout.default"(%x, 0.5, false) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %d = aten.op "alpha_dropout.default"(%x, 0.5, false) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %e = aten.op "feature_alpha_dropout.default"(%x, 0.5, false) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  func.return %a, %b, %c, %d, %e : tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>
}

// Copies and conversions to the tensor's own dtype, asking for nothing else.
// CHECK-LABEL: func.func @conversions(
// CHECK-SAME:      %[[X:[^:]*]]: tensor<2x4xf32>
// CHECK-NEXT:    %[[C:.*]] = aten.param constant "c"
// CHECK-NEXT:    func.return %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[C]] :
func.func @conversions(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  %c = aten.param constant "c" = dense<3.0> : tensor<2x4xf32>
  %a = aten.op "to.dtype"(%x, #aten.dtype<float32>, false, true) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %b = aten.op "to.dtype_layout"(%x, dtype = #aten.dtype<float32>, layout = #aten.layout<strided>) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %d = aten.op "_to_copy.default"(%x, dtype = #aten.dtype<float32>) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %e = aten.op "type_as.default"(%x, %c) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %f = aten.op "alias.default"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %g = aten.op "clone.default"(%x, memory_format = #aten.memory_format<preserve_format>) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %h = aten.op "to.dtype"(%x, #aten.dtype<float32>, memory_format = #aten.memory_format<preserve_format>) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %l = aten.op "lift_fresh_copy.default"(%c) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  func.return %a, %b, %d, %e, %f, %g, %h, %l : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>
}

// Views to the static shape the tensor already has, identity permutations.
// CHECK-LABEL: func.func @same_shape(
// CHECK-SAME:      %[[X:[^:]*]]: tensor<2x3x4xf32>, %[[V:[^:]*]]: tensor<5xf32>
// CHECK-NEXT:    func.return %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[V]], %[[V]] :
func.func @same_shape(%x: tensor<2x3x4xf32>, %v: tensor<5xf32>) -> (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<5xf32>, tensor<5xf32>) {
  %a = aten.op "view.default"(%x, [2, 3, 4]) : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %b = aten.op "reshape.default"(%x, [-1, 3, 4]) : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %c = aten.op "_unsafe_view.default"(%x, [2, 3, 4]) : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %d = aten.op "expand.default"(%x, [2, -1, 4]) : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %e = aten.op "squeeze.dim"(%x, 1) : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %f = aten.op "permute.default"(%x, [0, 1, 2]) : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %g = aten.op "permute.default"(%x, [-3, -2, -1]) : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %h = aten.op "transpose.int"(%x, 1, -2) : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %i = aten.op "flatten.using_ints"(%v) : (tensor<5xf32>) -> tensor<5xf32>
  %j = aten.op "t.default"(%v) : (tensor<5xf32>) -> tensor<5xf32>
  func.return %a, %b, %c, %d, %e, %f, %g, %h, %i, %j : tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<5xf32>, tensor<5xf32>
}

// Views that undo the view before them (a `squeeze` need not name the dim the
// `unsqueeze` added: only the order of the elements and the shape count); a
// view of a view is one view.
// CHECK-LABEL: func.func @chains(
// CHECK-SAME:      %[[X:[^:]*]]: tensor<2x4xf32>, %[[O:[^:]*]]: tensor<1x4xf32>
// CHECK-NEXT:    %[[V:.*]] = aten.op "view.default"(%[[X]], [4, 2]) : (tensor<2x4xf32>) -> tensor<4x2xf32>
// CHECK-NEXT:    func.return %[[X]], %[[X]], %[[X]], %[[V]], %[[X]], %[[X]], %[[X]], %[[O]] :
func.func @chains(%x: tensor<2x4xf32>, %o: tensor<1x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<4x2xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<1x4xf32>) {
  %u = aten.op "unsqueeze.default"(%x, 0) : (tensor<2x4xf32>) -> tensor<1x2x4xf32>
  %a = aten.op "squeeze.dim"(%u, 0) : (tensor<1x2x4xf32>) -> tensor<2x4xf32>
  %u1 = aten.op "unsqueeze.default"(%x, 0) : (tensor<2x4xf32>) -> tensor<1x2x4xf32>
  %u2 = aten.op "unsqueeze.default"(%u1, 3) : (tensor<1x2x4xf32>) -> tensor<1x2x4x1xf32>
  %s1 = aten.op "squeeze.dim"(%u2, -1) : (tensor<1x2x4x1xf32>) -> tensor<1x2x4xf32>
  %b = aten.op "squeeze.default"(%s1) : (tensor<1x2x4xf32>) -> tensor<2x4xf32>
  %f = aten.op "view.default"(%x, [8]) : (tensor<2x4xf32>) -> tensor<8xf32>
  %c = aten.op "view.default"(%f, [2, 4]) : (tensor<8xf32>) -> tensor<2x4xf32>
  %d = aten.op "view.default"(%f, [4, 2]) : (tensor<8xf32>) -> tensor<4x2xf32>
  %t = aten.op "t.default"(%x) : (tensor<2x4xf32>) -> tensor<4x2xf32>
  %e = aten.op "t.default"(%t) : (tensor<4x2xf32>) -> tensor<2x4xf32>
  %tr = aten.op "transpose.int"(%x, 0, 1) : (tensor<2x4xf32>) -> tensor<4x2xf32>
  %g = aten.op "transpose.int"(%tr, -1, 0) : (tensor<4x2xf32>) -> tensor<2x4xf32>
  %u3 = aten.op "unsqueeze.default"(%x, 2) : (tensor<2x4xf32>) -> tensor<2x4x1xf32>
  %p = aten.op "permute.default"(%u3, [1, 2, 0]) : (tensor<2x4x1xf32>) -> tensor<4x1x2xf32>
  %q = aten.op "permute.default"(%p, [2, 0, 1]) : (tensor<4x1x2xf32>) -> tensor<2x4x1xf32>
  %h = aten.op "squeeze.dim"(%q, 2) : (tensor<2x4x1xf32>) -> tensor<2x4xf32>
  %u4 = aten.op "unsqueeze.default"(%o, 0) : (tensor<1x4xf32>) -> tensor<1x1x4xf32>
  %i = aten.op "squeeze.dim"(%u4, 1) : (tensor<1x1x4xf32>) -> tensor<1x4xf32>
  func.return %a, %b, %c, %d, %e, %g, %h, %i : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<4x2xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<1x4xf32>
}

// `contiguous` of what is already contiguous; the first one is a real copy.
// CHECK-LABEL: func.func @contiguous_twice(
// CHECK-NEXT:    %[[T:.*]] = aten.op "transpose.int"
// CHECK-NEXT:    %[[C:.*]] = aten.op "contiguous.default"(%[[T]])
// CHECK-NEXT:    %[[V:.*]] = aten.op "view.default"(%[[C]], [8])
// CHECK-NEXT:    func.return %[[V]]
func.func @contiguous_twice(%x: tensor<2x4xf32>) -> tensor<8xf32> {
  %t = aten.op "transpose.int"(%x, 0, 1) : (tensor<2x4xf32>) -> tensor<4x2xf32>
  %c = aten.op "contiguous.default"(%t) : (tensor<4x2xf32>) -> tensor<4x2xf32>
  %c2 = aten.op "contiguous.default"(%c) : (tensor<4x2xf32>) -> tensor<4x2xf32>
  %v = aten.op "view.default"(%c2, [8]) : (tensor<4x2xf32>) -> tensor<8xf32>
  func.return %v : tensor<8xf32>
}
