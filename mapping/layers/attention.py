"""Attention on crossbar arrays.

:class:`AnalogMultiheadAttention` replaces ``nn.MultiheadAttention`` entirely: the Q, K, V
input projections and the output projection are :class:`AnalogLinear` layers (weights on the
arrays), while the activation-times-activation products ``Q K^T`` and ``softmax(.) V`` (and the
softmax, masks, ``bias_k``/``bias_v``, dropout) are computed digitally — no weight of theirs
can be stored in a crossbar ahead of time. The projections are one ``in_proj`` (3E x E) when
query, key and value have the embedding dimension (as ``in_proj_weight``), else ``q_proj``,
``k_proj``, ``v_proj`` (as ``q/k/v_proj_weight``); self-attention (query, key and value the
same tensor) reads ``in_proj`` once, cross-attention once for the query and once for key and
value (each read converts all 3E outputs, as the arrays hold them together).

``nn.TransformerEncoderLayer`` becomes :class:`AnalogTransformerEncoderLayer`: the same modules
with a forward that always calls them (PyTorch's inference fast path reads ``linear1.weight``
and ``self_attn.in_proj_weight`` and would bypass the arrays); ``nn.TransformerEncoder`` is
kept off its nested-tensor path for the same reason. ``nn.TransformerDecoderLayer`` has no
fast path: its converted modules run as they are.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from memxbar.crossbar.tile import TileConfig
from memxbar.errors import ConfigError, plain_value
from memxbar.mapping.config import MappingConfig
from memxbar.mapping.layers.linear import AnalogLinear

DIGITAL_PARTS = "QK^T, softmax and softmax*V (activation x activation) are digital"


def _float_mask(mask: Tensor | None, dtype: torch.dtype, name: str) -> Tensor | None:
    """A boolean (True = masked) or additive float mask as an additive float mask."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(
            mask, float("-inf"))
    if not mask.is_floating_point():
        raise ConfigError(f"AnalogMultiheadAttention: {name} has dtype {mask.dtype}; allowed: "
                         "bool or floating point")
    return mask.to(dtype)


def _shape(x: object) -> str:
    """``x``'s shape, or its type where it is not a tensor (for an error message)."""
    return f"of shape {tuple(x.shape)}" if isinstance(x, Tensor) else f"a {type(x).__name__}"


def _copy_into(layer: AnalogLinear | None, weight: Tensor | None, bias: Tensor | None) -> None:
    """Copy a digital projection's weight (and bias, if it has one) into ``layer``, frozen
    where they are; the analog layer was built with the same projections and biases as the
    digital one."""
    assert layer is not None and weight is not None
    layer.weight.copy_(weight)
    layer.weight.requires_grad_(weight.requires_grad)
    if bias is not None:
        assert layer.bias is not None
        layer.bias.copy_(bias)
        layer.bias.requires_grad_(bias.requires_grad)


class AnalogMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` with its projections on crossbar arrays (same forward
    signature and results)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 *, hardware: TileConfig, mapping: MappingConfig | None = None) -> None:
        super().__init__()
        embed_dim, num_heads, dropout = (plain_value(v) for v in (embed_dim, num_heads, dropout))
        kdim, vdim = plain_value(kdim), plain_value(vdim)
        if not isinstance(embed_dim, int) or not isinstance(num_heads, int) or num_heads < 1 \
                or embed_dim % num_heads:
            raise ConfigError(f"AnalogMultiheadAttention: embed_dim = {embed_dim!r} must be a "
                             f"multiple of num_heads = {num_heads!r} (integers >= 1)")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
                0.0 <= dropout <= 1.0):
            raise ConfigError(f"AnalogMultiheadAttention: dropout = {dropout!r} is not allowed; "
                             "allowed: a probability in [0, 1]")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first, self.add_zero_attn = dropout, batch_first, add_zero_attn
        self.in_proj: AnalogLinear | None = None
        self.q_proj: AnalogLinear | None = None
        self.k_proj: AnalogLinear | None = None
        self.v_proj: AnalogLinear | None = None
        if self._qkv_same_embed_dim:
            self.in_proj = AnalogLinear(embed_dim, 3 * embed_dim, bias, hardware=hardware,
                                        mapping=mapping)
        else:
            self.q_proj = AnalogLinear(embed_dim, embed_dim, bias, hardware=hardware,
                                       mapping=mapping)
            self.k_proj = AnalogLinear(self.kdim, embed_dim, bias, hardware=hardware,
                                       mapping=mapping)
            self.v_proj = AnalogLinear(self.vdim, embed_dim, bias, hardware=hardware,
                                       mapping=mapping)
        self.out_proj = AnalogLinear(embed_dim, embed_dim, bias, hardware=hardware,
                                     mapping=mapping)
        self.bias_k: nn.Parameter | None = None
        self.bias_v: nn.Parameter | None = None
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.zeros(1, 1, embed_dim))
            self.bias_v = nn.Parameter(torch.zeros(1, 1, embed_dim))

    @classmethod
    def from_digital(cls, mha: nn.MultiheadAttention, hardware: TileConfig,
                     mapping: MappingConfig | None = None) -> AnalogMultiheadAttention:
        """An analog copy of ``mha`` with the same weights (not yet programmed)."""
        new = cls(mha.embed_dim, mha.num_heads, mha.dropout, mha.in_proj_bias is not None,
                  mha.bias_k is not None, mha.add_zero_attn, mha.kdim, mha.vdim,
                  mha.batch_first, hardware=hardware, mapping=mapping)
        w, b, E = mha.out_proj.weight, mha.in_proj_bias, new.embed_dim
        with torch.no_grad():
            if new.in_proj is not None:
                _copy_into(new.in_proj, mha.in_proj_weight, b)
            else:
                for k, (mine, theirs) in enumerate(((new.q_proj, mha.q_proj_weight),
                                                    (new.k_proj, mha.k_proj_weight),
                                                    (new.v_proj, mha.v_proj_weight))):
                    _copy_into(mine, theirs, None if b is None else b[k * E:(k + 1) * E])
                    if b is not None and mine is not None and mine.bias is not None:
                        mine.bias.requires_grad_(b.requires_grad)  # a slice made without grad
            _copy_into(new.out_proj, w, mha.out_proj.bias)
            if mha.bias_k is not None and mha.bias_v is not None:
                assert new.bias_k is not None and new.bias_v is not None
                new.bias_k.copy_(mha.bias_k).requires_grad_(mha.bias_k.requires_grad)
                new.bias_v.copy_(mha.bias_v).requires_grad_(mha.bias_v.requires_grad)
        return new.to(w.device, w.dtype)

    def _project(self, query: Tensor, key: Tensor, value: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor]:
        E = self.embed_dim
        if self.in_proj is None:
            assert self.q_proj is not None and self.k_proj is not None and self.v_proj is not None
            return self.q_proj(query), self.k_proj(key), self.v_proj(value)
        if query is key and key is value:  # self-attention: one read of the arrays
            q, k, v = self.in_proj(query).split(E, dim=-1)
            return q, k, v
        if key is value:
            k, v = self.in_proj(key)[..., E:].split(E, dim=-1)
            return self.in_proj(query)[..., :E], k, v
        return (self.in_proj(query)[..., :E], self.in_proj(key)[..., E:2 * E],
                self.in_proj(value)[..., 2 * E:])

    def _check_inputs(self, query: Tensor, key: Tensor, value: Tensor,
                      key_padding_mask: Tensor | None, attn_mask: Tensor | None) -> None:
        """Refuse what ``nn.MultiheadAttention`` cannot take, naming it: query, key and value
        tensors of one rank (2: unbatched (L, E), 3: batched), one batch size, key and value
        of one length, masks of the shapes that go with them (the feature sizes, dtypes and
        devices are checked by the projections)."""
        o = "AnalogMultiheadAttention"
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise ConfigError(f"{o}: {name} must be a torch.Tensor, got {type(t).__name__}")
        dims = (query.dim(), key.dim(), value.dim())
        if dims not in ((2, 2, 2), (3, 3, 3)):
            raise ConfigError(f"{o}: query, key and value have {dims} dimensions; allowed: all "
                             "2 (unbatched: length, features) or all 3 (batched)")
        b = 0 if self.batch_first or dims[0] == 2 else 1  # batch dim, then the length dim
        lq, lk, lv = (t.shape[1 - b] if dims[0] == 3 else t.shape[0]
                      for t in (query, key, value))
        if dims[0] == 3 and not query.shape[b] == key.shape[b] == value.shape[b]:
            raise ConfigError(f"{o}: query, key and value have batch sizes {query.shape[b]}, "
                             f"{key.shape[b]}, {value.shape[b]}; allowed: one batch size")
        if lk != lv:
            raise ConfigError(f"{o}: key has length {lk}, value {lv}; allowed: one length")
        n = query.shape[b] if dims[0] == 3 else None
        if key_padding_mask is not None:
            want = (lk,) if n is None else (n, lk)
            if not isinstance(key_padding_mask, Tensor) or key_padding_mask.shape != want:
                raise ConfigError(f"{o}: key_padding_mask is {_shape(key_padding_mask)}; "
                                 f"allowed: shape {want} (batch, key length)")
        if attn_mask is not None:
            allowed = [(lq, lk), ((n or 1) * self.num_heads, lq, lk)]
            if not isinstance(attn_mask, Tensor) or tuple(attn_mask.shape) not in allowed:
                raise ConfigError(f"{o}: attn_mask is {_shape(attn_mask)}; allowed: shape "
                                 f"{' or '.join(map(str, allowed))} ((batch x heads,) query "
                                 "length, key length)")

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """As ``nn.MultiheadAttention.forward``; returns (output, weights or None)."""
        self._check_inputs(query, key, value, key_padding_mask, attn_mask)
        batched = query.dim() == 3
        q, k, v = self._project(query, key, value)
        if not batched:
            q, k, v = q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        N, L, E = q.shape
        H, d = self.num_heads, self.head_dim
        mask = _float_mask(attn_mask, q.dtype, "attn_mask")
        if is_causal and mask is None:
            S = k.shape[1]
            mask = torch.ones(L, S, dtype=torch.bool, device=q.device).triu_(1)
            mask = _float_mask(mask, q.dtype, "attn_mask")
        kpm = _float_mask(key_padding_mask, q.dtype, "key_padding_mask")
        if self.bias_k is not None and self.bias_v is not None:
            k = torch.cat([k, self.bias_k.expand(N, 1, E)], dim=1)
            v = torch.cat([v, self.bias_v.expand(N, 1, E)], dim=1)
            mask = None if mask is None else F.pad(mask, (0, 1))
            kpm = None if kpm is None else F.pad(kpm, (0, 1))
        q = q.reshape(N, L, H, d).transpose(1, 2)
        k = k.reshape(N, k.shape[1], H, d).transpose(1, 2)
        v = v.reshape(N, v.shape[1], H, d).transpose(1, 2)
        if self.add_zero_attn:
            k = torch.cat([k, k.new_zeros(N, H, 1, d)], dim=2)
            v = torch.cat([v, v.new_zeros(N, H, 1, d)], dim=2)
            mask = None if mask is None else F.pad(mask, (0, 1))
            kpm = None if kpm is None else F.pad(kpm, (0, 1))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(d)  # digital: activation x activation
        if mask is not None:
            scores = scores + (mask.reshape(N, H, L, -1) if mask.dim() == 3 else mask)
        if kpm is not None:
            scores = scores + kpm[:, None, None, :]
        attn = torch.softmax(scores, dim=-1)
        weights = attn
        if self.training and self.dropout > 0:
            attn = F.dropout(attn, p=self.dropout)
        out = (attn @ v).transpose(1, 2).reshape(N, L, E)
        out = self.out_proj(out)
        if not batched:
            out = out[0]
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights[0] if not batched else weights)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}; {DIGITAL_PARTS}"


class AnalogTransformerEncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` whose forward always runs its modules (no fast path)."""

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask,
                                   is_causal=is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask,
                                          is_causal=is_causal))
        return self.norm2(x + self._ff_block(x))

