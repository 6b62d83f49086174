"""Query tiles for the engine: rectangles of query cells, the key rectangle their windows cover, window masks.

The engine (:mod:`ino.propagation.engine`) compares a tile of queries with one context frame at a time, only over
the keys its windows can reach; an unwindowed frame (the references' first frame) is met whole.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache

import torch


@dataclass(frozen=True)
class Tile:
    """A rectangle of query cells and the key rectangle covering all their windows (clipped to the grid)."""

    rows: slice
    cols: slice
    key_rows: slice
    key_cols: slice
    query_index: torch.Tensor
    key_index: torch.Tensor

    def outside(self, radius: int, disk: bool, device: torch.device) -> torch.Tensor | None:
        """(queries, keys) True where a key lies outside the query's window; None when none does.

        Square: |dy| > radius or |dx| > radius. Disk: dy^2 + dx^2 >= radius^2, i.e. not strictly inside
        (CRW's ``sqrt(dy^2 + dx^2) < radius``; equal on integer offsets, as sqrt is correctly rounded).
        """
        ranges = [torch.arange(s.start, s.stop, device=device) for s in (self.rows, self.cols)]
        keys = [torch.arange(s.start, s.stop, device=device) for s in (self.key_rows, self.key_cols)]
        dy, dx = ((r[:, None] - k[None]).abs() for r, k in zip(ranges, keys, strict=True))
        if disk:
            far = dy[:, None, :, None] ** 2 + dx[None, :, None, :] ** 2 >= radius**2
            return far.reshape(dy.shape[0] * dx.shape[0], -1) if far.any() else None
        far_rows, far_cols = dy > radius, dx > radius
        if not (far_rows.any() or far_cols.any()):
            return None
        far = far_rows[:, None, :, None] | far_cols[None, :, None, :]
        return far.reshape(far_rows.shape[0] * far_cols.shape[0], -1)


def band_cost(n: int, size: int, radius: int) -> int:
    """Sum over the bands of `size` cells along an axis of n cells of band length x clipped key extent."""
    return sum(
        (min(start + size, n) - start) * (min(start + size + radius, n) - max(start - radius, 0))
        for start in range(0, n, size)
    )


@cache
def tiles(h: int, w: int, radius: int, chunk_size: int) -> tuple[Tile, ...]:
    """Tiles of at most chunk_size queries, shaped to minimise the total query x key products.

    ``radius`` is the reach of a window along each axis. That total is separable into a row and a column factor
    (:func:`band_cost`), so every height is tried.
    """
    best = min(
        ((rows, min(w, chunk_size // rows)) for rows in range(1, min(h, chunk_size) + 1)),
        key=lambda shape: (
            band_cost(h, shape[0], radius) * band_cost(w, shape[1], radius),
            -shape[0] * shape[1],
        ),
    )
    grid = torch.arange(h * w).view(h, w)
    made = []
    for r0 in range(0, h, best[0]):
        for c0 in range(0, w, best[1]):
            rows, cols = slice(r0, min(r0 + best[0], h)), slice(c0, min(c0 + best[1], w))
            key_rows = slice(max(r0 - radius, 0), min(rows.stop + radius, h))
            key_cols = slice(max(c0 - radius, 0), min(cols.stop + radius, w))
            made.append(
                Tile(
                    rows,
                    cols,
                    key_rows,
                    key_cols,
                    grid[rows, cols].reshape(-1),
                    grid[key_rows, key_cols].reshape(-1),
                )
            )
    return tuple(made)


@cache
def all_keys(h: int, w: int) -> torch.Tensor:
    """Every cell of an h x w grid, row-major: the keys of an unwindowed context frame."""
    return torch.arange(h * w)


def whole(tile: Tile, h: int, w: int) -> Tile:
    """The tile's queries against every key of the grid: an unwindowed context frame (the references' first)."""
    return dataclasses.replace(tile, key_rows=slice(0, h), key_cols=slice(0, w), key_index=all_keys(h, w))
