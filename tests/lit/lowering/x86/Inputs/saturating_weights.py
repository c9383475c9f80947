"""Write target.mlir's weights: channel 0 has a pair (127, 127) that overflows int16 with
uint8 activations of 255 on a CPU without VNNI (2 x 255 x 127 > 32767); channel 1 does not."""

import sys

import torch
from safetensors.torch import save_file

save_file({"fc.weight_q": torch.tensor([[127, 127, 0, 0], [64, 64, 64, 64]], dtype=torch.int8),
           "fc.bias": torch.zeros(2)}, sys.argv[1])
