builtin.module attributes {qir.stage = "observed"} {
  func.func @forward(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
    %w = aten.param constant "w" = dense<[[1.0, -1.0], [0.5, 1.0]]> : tensor<2x2xf32>
    %xo = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, smooth 1.5, group 0>} : tensor<3x2xf32>
    %l = aten.op "linear.default"(%xo, %w) : (tensor<3x2xf32>, tensor<2x2xf32>) -> tensor<3x2xf32>
    func.return %l : tensor<3x2xf32>
  }
}
