// RUN: qir-opt %s -p 'annotate{quantizer=x86 target=x86-avx512-vnni}' | qir-opt -p propagate-annotations,insert-observers | filecheck %s

// Annotated IR is text like every stage: printed, read back and propagated. A
// `none` entry (an operand left float: here the conv's bias) reads back
// as the builtin none type; the aten dialect turns it back into the none entry
// the passes expect (it was taken for a spec: "'NoneType' object has no
// attribute 'with_group'").

builtin.module attributes {qir.stage = "float"} {
  func.func @forward(%x: tensor<1x3x8x8xf32>) -> tensor<1x8x6x6xf32> {
    %w = aten.param constant "w" = dense<5.000000e-01> : tensor<8x3x3x3xf32>
    %b = aten.param constant "b" = dense<1.000000e-01> : tensor<8xf32>
    %c = aten.op "conv2d.default"(%x, %w, %b) : (tensor<1x3x8x8xf32>, tensor<8x3x3x3xf32>, tensor<8xf32>) -> tensor<1x8x6x6xf32>
    %r = aten.op "relu.default"(%c) : (tensor<1x8x6x6xf32>) -> tensor<1x8x6x6xf32>
    func.return %r : tensor<1x8x6x6xf32>
  }
}

// CHECK:      builtin.module attributes {qir.stage = "observed", qir.target = "x86-avx512-vnni"}
// CHECK:      %[[X:.*]] = obs.observe %x {id = "obs{{[0-9]+}}", spec = #obs.spec<u8[0:255]
// CHECK:      %[[W:.*]] = obs.observe %w {{.*}}per_channel_minmax, axis 0{{.*}}stats = {min = array<f64
// CHECK-NOT:  obs.observe %b
// CHECK:      aten.op "conv2d.default"(%[[X]], %[[W]], %b) :
