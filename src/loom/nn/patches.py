"""Patch-grid position embeddings of vision transformers (ViT, CLIP's vision tower).

`interpolate_pos_encoding` resizes the learned grid of position embeddings to another image
resolution with bicubic interpolation (DINO's recipe, as transformers applies it), so a model
trained at 224x224 runs at 384x384 or on a non-square image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def interpolate_pos_encoding(pos: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """pos (1, 1 + gh*gw, C): class position first, then the grid row by row.
    Returns (1, 1 + nh*nw, C) for the new grid; `pos` itself when the grid is unchanged."""
    if tuple(new_grid) == tuple(grid):
        return pos
    (gh, gw), (nh, nw) = grid, new_grid
    cls_pos, patch_pos = pos[:, :1], pos[:, 1:]
    C = pos.shape[-1]
    patch_pos = patch_pos.reshape(1, gh, gw, C).permute(0, 3, 1, 2)  # (1, C, gh, gw)
    patch_pos = F.interpolate(patch_pos, size=(nh, nw), mode="bicubic", align_corners=False)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, nh * nw, C)
    return torch.cat((cls_pos, patch_pos), dim=1)
