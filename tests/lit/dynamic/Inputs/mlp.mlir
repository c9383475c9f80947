// A float program of two linears (one without bias) and a product of activations, its weights
// named (random ones are made by `reference/Inputs/weights.py`): the input of the dynamic
// stage-by-stage tests.
builtin.module {
  func.func @forward(%x: tensor<2x4x32xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x4xf32>) {
    %w1 = aten.param parameter "fc1.weight" : tensor<48x32xf32>
    %b1 = aten.param parameter "fc1.bias" : tensor<48xf32>
    %w2 = aten.param parameter "fc2.weight" : tensor<16x48xf32>
    %h = aten.op "linear.default"(%x, %w1, %b1) : (tensor<2x4x32xf32>, tensor<48x32xf32>, tensor<48xf32>) -> tensor<2x4x48xf32>
    %r = aten.op "relu.default"(%h) : (tensor<2x4x48xf32>) -> tensor<2x4x48xf32>
    %y = aten.op "linear.default"(%r, %w2) : (tensor<2x4x48xf32>, tensor<16x48xf32>) -> tensor<2x4x16xf32>
    %yt = aten.op "transpose.int"(%y, 1, 2) : (tensor<2x4x16xf32>) -> tensor<2x16x4xf32>
    %m = aten.op "matmul.default"(%y, %yt) : (tensor<2x4x16xf32>, tensor<2x16x4xf32>) -> tensor<2x4x4xf32>
    func.return %y, %m : tensor<2x4x16xf32>, tensor<2x4x4xf32>
  }
}
