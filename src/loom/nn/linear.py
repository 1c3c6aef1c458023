"""`Linear`: `nn.Linear` whose products with a few rows take a faster CPU kernel.

On CPU in fp32, torch's `x @ weight.T` with 1 to 12 rows (one decoding step of a small
batch) runs a matrix-vector or small-M kernel that streams the weights 1.5-5x slower than
the transposed product `weight @ x.T`; a single row is doubled, because the two-column
product also beats the matrix-vector one. Measured on SmolLM2-135M (2 threads): greedy
decoding 26.6 -> 47.6 tokens/s at batch 1, 128 -> 186 at batch 8; on t5-small 1 row
7.7 -> 3.0 ms per step. Other dtypes (fp16 is slower this way), devices and row counts use
`nn.Linear`'s own product. Parameters, state-dict names and values (up to summation order)
are `nn.Linear`'s, so checkpoints and the reference's numbers are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

FEW_ROWS = 12  # tuned on this project's 2-core AMD EPYC machines


class Linear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
        if not 0 < rows <= FEW_ROWS or x.device.type != "cpu" or x.dtype != torch.float32 \
                or self.weight.dtype != torch.float32:
            return super().forward(x)
        flat = x.reshape(rows, x.shape[-1])
        if rows == 1:
            flat = torch.cat([flat, flat])
        out = (self.weight @ flat.t())[:, :rows].t()  # (rows, out_features)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], out.shape[-1])


__all__ = ["Linear", "FEW_ROWS"]
