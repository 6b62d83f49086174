"""The seeded, sharded clip sampler of a training run: which clips of a :class:`~ino.data.clips.ClipIndex` each
rank gets in each epoch (INO's ``RandomClipSampler``, drawn from an explicit generator; docs/method.md §1, §10.13).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ino.errors import InoError

if TYPE_CHECKING:
    from ino.data.clips import ClipIndex


class ClipSampler:
    """INO's ``RandomClipSampler`` (min(clips_per_video, n) distinct clips per video, shuffled together), drawn
    from a generator seeded with (seed, epoch) and sharded ``rank::world_size`` after truncating the epoch to a
    multiple of ``world_size * batch_size`` (``drop_last``; otherwise padded from its start to a multiple of
    ``world_size``, as torch's ``DistributedSampler`` does). Yields ``(epoch, position_in_epoch, clip_id)``.
    """

    def __init__(
        self,
        index: ClipIndex,
        clips_per_video: int = 5,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        batch_size: int = 1,
        drop_last: bool = True,
    ) -> None:
        if clips_per_video < 1 or batch_size < 1 or world_size < 1 or not 0 <= rank < world_size or seed < 0:
            raise InoError(
                f"invalid sampler settings: clips_per_video={clips_per_video}, batch_size={batch_size}, "
                f"rank={rank}, world_size={world_size}, seed={seed}"
            )
        self.index, self.clips_per_video, self.seed = index, clips_per_video, seed
        self.rank, self.world_size, self.batch_size, self.drop_last = rank, world_size, batch_size, drop_last
        self.epoch, self._skip = 0, 0
        self._order: tuple[int, np.ndarray] | None = None

    def draw(self, epoch: int) -> np.ndarray:
        """The epoch's clip ids over all ranks, in order, before truncation (Floyd's subset sampling, vectorised)."""
        rng = np.random.default_rng([self.seed, epoch])
        counts, starts = self.index.clip_counts, self.index.clip_starts[:-1]
        k = self.clips_per_video
        small = counts <= k
        taken = [np.arange(s, s + n) for s, n in zip(starts[small], counts[small], strict=True)]
        n_big = counts[~small]
        chosen = np.empty((len(n_big), k), dtype=np.int64)
        for i in range(k):  # Floyd: for j = n-k+i, take t ~ U[0, j], or j itself if t was taken already
            j = n_big - k + i
            t = np.floor(rng.random(len(n_big)) * (j + 1)).astype(np.int64)
            chosen[:, i] = np.where((chosen[:, :i] == t[:, None]).any(1), j, t)
        drawn = np.concatenate([*taken, (chosen + starts[~small][:, None]).ravel(), np.empty(0, np.int64)])
        return rng.permutation(drawn)

    def _epoch_order(self) -> np.ndarray:
        """The epoch's ids after truncation (drop_last) or padding, as all ranks see it."""
        if self._order is None or self._order[0] != self.epoch:
            drawn = self.draw(self.epoch)
            if self.drop_last:
                drawn = drawn[: len(drawn) // (self.world_size * self.batch_size) * self.world_size * self.batch_size]
            elif len(drawn):
                drawn = np.resize(drawn, math.ceil(len(drawn) / self.world_size) * self.world_size)
            self._order = (self.epoch, drawn)
        return self._order[1]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to iterate, and clear any :meth:`skip`."""
        self.epoch, self._skip = epoch, 0

    def skip(self, n_samples: int) -> None:
        """Start this epoch's iteration after this rank's first ``n_samples`` (resume mid-epoch)."""
        if not 0 <= n_samples <= self.samples_per_epoch:
            raise InoError(f"cannot skip {n_samples} samples of an epoch of {self.samples_per_epoch}")
        self._skip = n_samples

    @property
    def samples_per_epoch(self) -> int:
        """Samples this rank gets per epoch (equal on every rank)."""
        return len(self._epoch_order()) // self.world_size

    @property
    def steps_per_epoch(self) -> int:
        n = self.samples_per_epoch
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __len__(self) -> int:
        """Samples left in this epoch on this rank (the whole epoch unless :meth:`skip` was called)."""
        return self.samples_per_epoch - self._skip

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        order = self._epoch_order()
        first = self.rank + self._skip * self.world_size
        for position in range(first, len(order), self.world_size):
            yield self.epoch, position, int(order[position])
