// RUN: qir-opt %s | qir-opt --weights %S/roundtrip.safetensors | filecheck %s
// RUN: qir-opt %s -o %t.mlir && qir-opt %t.mlir | filecheck %s

// Every kind of argument an exported call carries survives print -> parse -> print:
// lists (nested, empty, with none and SSA values), keyword arguments, none, dtypes,
// symbolic sizes, Python operators, +-inf scalars, string and bool arguments, and
// parameters both inline (dense<...>) and named (their tensors are in
// roundtrip.safetensors beside this file; from stdin, --weights names it; with -o
// they are written beside the output, which the second RUN line reads back).

builtin.module attributes {qir.stage = "float"} {
  func.func @forward(%x: tensor<?x3x8x8xf32>, %ids: tensor<2x5xi64>, %mask: tensor<2x5xi1>) -> (tensor<?x4xf32>, tensor<?x4x6x6xf32>) attributes {qir.in_spec = "((*, *, *), {})", qir.out_spec = "(*, *)"} {
    %w = aten.param parameter "c.weight" : tensor<4x3x3x3xf32>
    %b = aten.param parameter "c.bias" : tensor<4xf32>
    %rm = aten.param buffer "bn.running_mean" : tensor<4xf32>
    %t = aten.param constant "table" = dense<[0.5, -1.0e+30, 3.0, -2.5e-08]> : tensor<4xf32>
    %k = aten.param constant "splat" = dense<1> : tensor<2x5xi64>
    %n = aten.op "sym_size.int"(%x, 0) : (tensor<?x3x8x8xf32>) -> i64
    %y = aten.op "conv2d.default"(%x, %w, %b, [1, 1], [0, 0], [1, 1], 1) {module = "c", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<?x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<?x4x6x6xf32>
    %y2 = aten.op "conv2d.default"(%x, %w, none) : (tensor<?x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<?x4x6x6xf32>
    %m = aten.op "mean.dim"(%y, [-2, -1], true) : (tensor<?x4x6x6xf32>) -> tensor<?x4xf32>
    %g = aten.op "gelu.default"(%m, approximate = "tanh") : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %cl = aten.op "clamp.default"(%g, 0xFFF0000000000000 : f64, 0x7FF0000000000000 : f64) : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %mf = aten.op "masked_fill.Scalar"(%ids, %mask, -1) : (tensor<2x5xi64>, tensor<2x5xi1>) -> tensor<2x5xi64>
    %i = aten.op "index.Tensor"(%y, [none, %ids]) : (tensor<?x4x6x6xf32>, tensor<2x5xi64>) -> tensor<?x2x5x6x6xf32>
    %z = aten.op "sum.dim_IntList"(%m, [], false, dtype = #aten.dtype<float64>) : (tensor<?x4xf32>) -> tensor<f64>
    %h = aten.op "to.dtype"(%m, #aten.dtype<float16>) : (tensor<?x4xf32>) -> tensor<?x4xf16>
    %e = aten.op "add.Tensor"(%m, %b, alpha = 1.0e-07) : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
    %v = aten.op "view.default"(%e, [%n, -1]) : (tensor<?x4xf32>, i64) -> tensor<?x4xf32>
    %s:2 = aten.op "split.Tensor"(%y, 2, 1) : (tensor<?x4x6x6xf32>) -> (tensor<?x2x6x6xf32>, tensor<?x2x6x6xf32>)
    %c = aten.op "cat.default"([%s#0, %s#1], 1) : (tensor<?x2x6x6xf32>, tensor<?x2x6x6xf32>) -> tensor<?x4x6x6xf32>
    %zz = aten.op "zeros.default"([2, 3], dtype = #aten.dtype<float32>, layout = #aten.layout<strided>, device = #aten.device<cpu>, pin_memory = false) : () -> tensor<2x3xf32>
    %cf = aten.op "clone.default"(%y, memory_format = #aten.memory_format<channels_last>) : (tensor<?x4x6x6xf32>) -> tensor<?x4x6x6xf32>
    %k4 = aten.op "py::operator.mul"(%n, 4) : (i64) -> i64
    %sc = aten.op "mul.Tensor"(%m, 1.5) : (tensor<?x4xf32>) -> tensor<?x4xf32>
    %up = aten.op "add.Tensor"(%rm, %b) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    aten.param_update "bn.running_mean", %up : tensor<4xf32>
    func.return %v, %c : tensor<?x4xf32>, tensor<?x4x6x6xf32>
  }
}

// CHECK:      builtin.module attributes {qir.stage = "float"} {
// CHECK-NEXT: func.func @forward(%x: tensor<?x3x8x8xf32>, %ids: tensor<2x5xi64>, %mask: tensor<2x5xi1>) -> (tensor<?x4xf32>, tensor<?x4x6x6xf32>) attributes {qir.in_spec = "((*, *, *), {})", qir.out_spec = "(*, *)"} {
// CHECK-NEXT: %w = aten.param parameter "c.weight" : tensor<4x3x3x3xf32>
// CHECK-NEXT: %b = aten.param parameter "c.bias" : tensor<4xf32>
// CHECK-NEXT: %rm = aten.param buffer "bn.running_mean" : tensor<4xf32>
// CHECK-NEXT: %t = aten.param constant "table" = dense<[5.000000e-01, -1.000000e+30, 3.000000e+00, -2.500000e-08]> : tensor<4xf32>
// CHECK-NEXT: %k = aten.param constant "splat" = dense<1> : tensor<2x5xi64>
// CHECK-NEXT: %n = aten.op "sym_size.int"(%x, 0) : (tensor<?x3x8x8xf32>) -> i64
// CHECK-NEXT: %y = aten.op "conv2d.default"(%x, %w, %b, [1, 1], [0, 0], [1, 1], 1) {module = "c", module_type = "torch.nn.modules.conv.Conv2d"} : (tensor<?x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<?x4x6x6xf32>
// CHECK-NEXT: %y2 = aten.op "conv2d.default"(%x, %w, none) : (tensor<?x3x8x8xf32>, tensor<4x3x3x3xf32>) -> tensor<?x4x6x6xf32>
// CHECK-NEXT: %m = aten.op "mean.dim"(%y, [-2, -1], true) : (tensor<?x4x6x6xf32>) -> tensor<?x4xf32>
// CHECK-NEXT: %g = aten.op "gelu.default"(%m, approximate = "tanh") : (tensor<?x4xf32>) -> tensor<?x4xf32>
// CHECK-NEXT: %cl = aten.op "clamp.default"(%g, 0xfff0000000000000 : f64, 0x7ff0000000000000 : f64) : (tensor<?x4xf32>) -> tensor<?x4xf32>
// CHECK-NEXT: %mf = aten.op "masked_fill.Scalar"(%ids, %mask, -1) : (tensor<2x5xi64>, tensor<2x5xi1>) -> tensor<2x5xi64>
// CHECK-NEXT: %i = aten.op "index.Tensor"(%y, [none, %ids]) : (tensor<?x4x6x6xf32>, tensor<2x5xi64>) -> tensor<?x2x5x6x6xf32>
// CHECK-NEXT: %z = aten.op "sum.dim_IntList"(%m, [], false, dtype = #aten.dtype<float64>) : (tensor<?x4xf32>) -> tensor<f64>
// CHECK-NEXT: %h = aten.op "to.dtype"(%m, #aten.dtype<float16>) : (tensor<?x4xf32>) -> tensor<?x4xf16>
// CHECK-NEXT: %e = aten.op "add.Tensor"(%m, %b, alpha = 1.0e-07) : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
// CHECK-NEXT: %v = aten.op "view.default"(%e, [%n, -1]) : (tensor<?x4xf32>, i64) -> tensor<?x4xf32>
// CHECK-NEXT: %s, %s_1 = aten.op "split.Tensor"(%y, 2, 1) : (tensor<?x4x6x6xf32>) -> (tensor<?x2x6x6xf32>, tensor<?x2x6x6xf32>)
// CHECK-NEXT: %c = aten.op "cat.default"([%s, %s_1], 1) : (tensor<?x2x6x6xf32>, tensor<?x2x6x6xf32>) -> tensor<?x4x6x6xf32>
// CHECK-NEXT: %zz = aten.op "zeros.default"([2, 3], dtype = #aten.dtype<float32>, layout = #aten.layout<strided>, device = #aten.device<cpu>, pin_memory = false) : () -> tensor<2x3xf32>
// CHECK-NEXT: %cf = aten.op "clone.default"(%y, memory_format = #aten.memory_format<channels_last>) : (tensor<?x4x6x6xf32>) -> tensor<?x4x6x6xf32>
// CHECK-NEXT: %k4 = aten.op "py::operator.mul"(%n, 4) : (i64) -> i64
// CHECK-NEXT: %sc = aten.op "mul.Tensor"(%m, 1.5) : (tensor<?x4xf32>) -> tensor<?x4xf32>
// CHECK-NEXT: %up = aten.op "add.Tensor"(%rm, %b) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: aten.param_update "bn.running_mean", %up : tensor<4xf32>
// CHECK-NEXT: func.return %v, %c : tensor<?x4xf32>, tensor<?x4x6x6xf32>
// CHECK-NEXT: }
// CHECK-NEXT: }
