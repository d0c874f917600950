"""Convolution layouts outside the enclave, the same as enclave/conv.cc's
(docs/design.md §4.4), for any array module ``xp`` (numpy or cupy).

A layer's operand has one row per (example, output row, output column) and one
column per (input channel, window row, window column), then the bias column. Layer 0
reads its batch as (N, C, H, W); a layer above reads the layer below's pooled output,
kept position-major, (N, H, W, C), as the device returns rows of output channels.
The float64 reference trainer (``_reference.FloatMLP``) and the tests use these
functions; the enclave has its own (trusted) copy of the same arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

from veil import _codes

_CONV = _codes.LAYER_KIND["conv2d"]
_MAX = _codes.POOL["max"]


@dataclass(frozen=True)
class Shape:
    """A layer's geometry, as enclave/conv.h's conv::Shape."""

    c: int
    h: int
    w: int
    kh: int
    kw: int
    stride: int
    pad: int
    oh: int
    ow: int
    pool: int = 0
    ps: int = 1

    @property
    def ph(self) -> int:
        return self.oh // self.ps

    @property
    def pw(self) -> int:
        return self.ow // self.ps


def shapes(specs: Sequence[Sequence[int]]) -> List[Optional[Shape]]:
    """Each layer's Shape from its wire spec (Sequential.wire_specs()), None for a dense
    layer on a flat input (a dense layer after a convolution flattens with one window)."""
    out: List[Optional[Shape]] = []
    for i, spec in enumerate(specs):
        if len(spec) > 3 and spec[3] == _CONV:
            c, h, w, k, st, p, pool, ps = (int(v) for v in spec[4:12])
            out.append(Shape(c, h, w, k, k, st, p, (h + 2 * p - k) // st + 1,
                             (w + 2 * p - k) // st + 1, pool, ps if pool else 1))
        elif i > 0 and out[-1] is not None:
            below = out[-1]
            c = int(specs[i - 1][1])
            out.append(Shape(c, below.ph, below.pw, below.ph, below.pw, 1, 0, 1, 1))
        else:
            out.append(None)
    return out


def im2col(xp, s: Shape, tensor, first_layer: bool):
    """(N·oh·ow, c·kh·kw) operand rows (no bias column) of a (N, C, H, W) batch
    (first_layer) or a pooled (N, H, W, C) tensor."""
    x = tensor.reshape(-1, s.c, s.h, s.w) if first_layer else \
        tensor.reshape(-1, s.h, s.w, s.c).transpose(0, 3, 1, 2)
    n = x.shape[0]
    x = xp.pad(x, ((0, 0), (0, 0), (s.pad, s.pad), (s.pad, s.pad)))
    cols = xp.empty((n, s.oh, s.ow, s.c, s.kh, s.kw), dtype=x.dtype)
    for ky in range(s.kh):
        for kx in range(s.kw):
            window = x[:, :, ky:ky + s.stride * (s.oh - 1) + 1:s.stride,
                       kx:kx + s.stride * (s.ow - 1) + 1:s.stride]
            cols[:, :, :, :, ky, kx] = window.transpose(0, 2, 3, 1)
    return cols.reshape(n * s.oh * s.ow, s.c * s.kh * s.kw)


def col2im(xp, s: Shape, cols, n: int):
    """The adjoint of im2col for a layer above the first: (N, H, W, C)."""
    cols = cols.reshape(n, s.oh, s.ow, s.c, s.kh, s.kw)
    x = xp.zeros((n, s.c, s.h + 2 * s.pad, s.w + 2 * s.pad), dtype=cols.dtype)
    for ky in range(s.kh):
        for kx in range(s.kw):
            x[:, :, ky:ky + s.stride * (s.oh - 1) + 1:s.stride,
              kx:kx + s.stride * (s.ow - 1) + 1:s.stride] += cols[:, :, :, :, ky, kx].transpose(
                  0, 3, 1, 2)
    x = x[:, :, s.pad:s.pad + s.h, s.pad:s.pad + s.w]
    return x.transpose(0, 2, 3, 1)


def _windows(s: Shape, out, n: int):
    """(N, ph, pw, C, ps·ps) windows of a layer's (N·oh·ow, C) output, row-major inside."""
    c = out.shape[-1]
    t = out.reshape(n, s.oh, s.ow, c)[:, :s.ph * s.ps, :s.pw * s.ps]
    t = t.reshape(n, s.ph, s.ps, s.pw, s.ps, c).transpose(0, 1, 3, 5, 2, 4)
    return t.reshape(n, s.ph, s.pw, c, s.ps * s.ps)


def pool(xp, s: Shape, out, n: int):
    """(pooled (N, ph, pw, C), argmax or None) of a layer's (N·oh·ow, C) output."""
    if not s.pool:
        return out.reshape(n, s.oh, s.ow, -1), None
    win = _windows(s, out, n)
    if s.pool == _MAX:
        arg = xp.argmax(win, axis=-1)  # the first maximum, as the enclave's
        return xp.take_along_axis(win, arg[..., None], axis=-1)[..., 0], arg
    return win.mean(axis=-1), None


def unpool(xp, s: Shape, d_pooled, arg, n: int):
    """The adjoint of pool: the (N·oh·ow, C) gradient of the layer's output."""
    c = d_pooled.shape[-1]
    if not s.pool:
        return d_pooled.reshape(n * s.oh * s.ow, c)
    if s.pool == _MAX:
        at_max = xp.arange(s.ps * s.ps) == arg[..., None]  # each window's first argmax
        win = at_max * d_pooled[..., None]
    else:
        win = xp.repeat(d_pooled[..., None] / (s.ps * s.ps), s.ps * s.ps, axis=-1)
    win = win.reshape(n, s.ph, s.pw, c, s.ps, s.ps).transpose(0, 1, 4, 2, 5, 3)
    full = xp.zeros((n, s.oh, s.ow, c), dtype=d_pooled.dtype)
    full[:, :s.ph * s.ps, :s.pw * s.ps] = win.reshape(n, s.ph * s.ps, s.pw * s.ps, c)
    return full.reshape(n * s.oh * s.ow, c)
