// RUN: qir-opt %s --split-input-file --verify-diagnostics

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{the quantized form, and only it, gives the types the module sees (`as`)}}
    %0 = custom.call quantized "m"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{the quantized form, and only it, gives the types the module sees (`as`)}}
    %0 = custom.call "m"(%x) as (tensor<2xf32>) -> tensor<2xf32> : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{output 0 is tensor<2xf32>; the module can see it as itself or quantized per tensor with the same shape, not as tensor<3x!quant.uniform<u8:f32, 1.000000e-01>>}}
    %0 = custom.call quantized "m"(%x) as (tensor<2xf32>) -> tensor<3x!quant.uniform<u8:f32, 0.1>> : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{`as` lists 2 inputs, the op has 1}}
    %0 = custom.call quantized "m"(%x) as (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32> : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{in_spec '((*,), {})' has 1 leaves for 2 arguments}}
    %0 = custom.call "m"(%x, 3) {in_spec = "((*,), {})"} : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{out_spec '(*, *)' has 2 leaves for 1 results}}
    %0 = custom.call "m"(%x) {out_spec = "(*, *)"} : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{qout must list 1 entries}}
    %0 = custom.call custom "m"(%x) {qout = []} : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}

// -----

builtin.module {
  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {
    // expected-error @+1 {{expected a module name or one of custom, observed, quantized}}
    %0 = custom.call float "m"(%x) : (tensor<2xf32>) -> tensor<2xf32>
    func.return %0 : tensor<2xf32>
  }
}
