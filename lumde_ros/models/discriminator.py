"""Transformer discriminator for holistic (adversarial) distillation: it scores whether a
disparity map, seen beside its RGB image, looks like the teacher's (real) or the student's
(fake). Every linear map is spectrally normalised, which keeps the adversarial game stable."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from lumde_ros.models.blocks import normalize_image


def _linear(c_in: int, c_out: int) -> nn.Module:
    return spectral_norm(nn.Linear(c_in, c_out))


class EncoderLayer(nn.Module):
    """Pre-norm Transformer encoder layer (multi-head self-attention, then an MLP)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = _linear(dim, 3 * dim), _linear(dim, dim)
        self.mlp = nn.Sequential(_linear(dim, 2 * dim), nn.GELU(), _linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                                  v.transpose(1, 2))
        x = x + self.out(attended.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class TransformerDiscriminator(nn.Module):
    """Patch embedding of [disparity, RGB] (4 channels), learned positional embeddings, a
    class token, `layers` encoder layers; the class token's output is the score (one number
    per image, unbounded: the hinge loss reads it). Positional embeddings are learned for
    `input_size` (height, width) and resized for other sizes."""

    def __init__(self, patch: int = 16, dim: int = 64, layers: int = 3, heads: int = 4,
                 input_size: tuple[int, int] = (192, 256)) -> None:
        super().__init__()
        grid = (max(1, input_size[0] // patch), max(1, input_size[1] // patch))
        self.embed = spectral_norm(nn.Conv2d(4, dim, patch, stride=patch))
        self.position = nn.Parameter(torch.zeros(1, dim, *grid))
        self.token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        nn.init.trunc_normal_(self.token, std=0.02)
        self.layers = nn.Sequential(*[EncoderLayer(dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = _linear(dim, 1)

    def forward(self, disp: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """disp (B, 1, H, W) in [0, 1], image (B, 3, H, W) RGB in [0, 1] -> scores (B,)."""
        # Disparity is normalised by its mean: the discriminator judges structure; the
        # pixel-wise loss already holds the student to the teacher's scale.
        disp = disp / disp.mean(dim=(2, 3), keepdim=True).clamp_min(1e-6) - 1
        x = self.embed(torch.cat([disp, normalize_image(image)], dim=1))
        position = self.position
        if position.shape[-2:] != x.shape[-2:]:
            position = F.interpolate(position, size=x.shape[-2:], mode="bilinear",
                                     align_corners=False)
        x = (x + position).flatten(2).transpose(1, 2)
        x = torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.head(self.norm(self.layers(x))[:, 0]).squeeze(1)
