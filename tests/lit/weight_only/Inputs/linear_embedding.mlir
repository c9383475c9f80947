// A float program with an embedding table and a linear, its weights named (random ones are made
// by `reference/Inputs/weights.py`): the input of the weight-only stage-by-stage tests.
builtin.module {
  func.func @forward(%ids: tensor<1x3xi64>, %x: tensor<1x3x64xf32>) -> (tensor<1x3x16xf32>, tensor<1x3x8xf32>) {
    %table = aten.param parameter "embed.weight" : tensor<10x8xf32>
    %w = aten.param parameter "fc.weight" : tensor<16x64xf32>
    %b = aten.param parameter "fc.bias" : tensor<16xf32>
    %e = aten.op "embedding.default"(%table, %ids) : (tensor<10x8xf32>, tensor<1x3xi64>) -> tensor<1x3x8xf32>
    %y = aten.op "linear.default"(%x, %w, %b) : (tensor<1x3x64xf32>, tensor<16x64xf32>, tensor<16xf32>) -> tensor<1x3x16xf32>
    func.return %y, %e : tensor<1x3x16xf32>, tensor<1x3x8xf32>
  }
}
