"""The label-propagation engine (docs/method.md §7.4-7.5, §7.7): features and soft labels in, soft labels out.

    propagator = LabelPropagator(config)         # works on the device the features come on
    soft = propagator.step(features_t, ids_t)    # features (C, h, w); ids (H, W) on frame 0 and where new
                                                 # objects appear, else None -> soft labels (n_classes, h, w)
    mask = labels_to_mask(soft, (th, tw), (H, W), config)  # uint8 (H, W) ids
    soft = propagator.step(features_0, labels=maps)  # or frame 0's soft labels (n_classes, h, w) on the grid

:class:`ino.propagation.api.VideoPropagator` wraps it with feature extraction and output masks, frame by frame.

Semantics (faithful to INO): a frame is predicted from the first frame of each *reference chain* plus up to
``n_last_frames`` previous frames. Affinities exp(<q, k> / T) between L2-normalised features count only in a
square (Chebyshev) window of ``radius`` grid cells; per query only the entries >= the k-th largest over all
context frames jointly survive (ties keep more), are normalised to sum 1 (a softmax, computed shifted by the
query's largest logit so that no temperature overflows) and average the context's *soft* labels, which are
stored unchanged as the frame's own context label. A mask given at frame t with ids not seen before starts a
new chain: its objects are injected, (1 - s) * pred + s * init with s their coverage, and later come only
from that chain; background comes only from chain 0. Any number of objects works. Frame 0 may give soft
labels instead of a mask (keypoint heat maps, part probabilities): chain 0 then owns all their channels and
they come out soft, never argmaxed (labels summing to 1 in every cell give outputs that do).

The references' rule (CRW, CropMAE; docs/propagation.md) is four settings away: a disk window (``window``), a
first frame outside it (``window_first_frame``), a context that always holds ``n_last_frames`` entries, copies of
the chain's first frame filling in at the start and each counted in the top-k (``pad_context``), and exactly k
neighbours (``topk_ties``). A chain's context is a multiset, (frame, windowed) -> count: each frame is compared
once, and the counts weigh its entries in the joint top-k and the weights.

Why it is fast: the dense formulation builds an (n_ctx * hw, hw) affinity (1.8 GB at 480p) and an (hw, hw)
window mask. Here queries go in rectangular tiles of at most ``chunk_size`` cells; a tile only meets the key
rectangle its windows cover, one context frame at a time, and keeps each frame's top k + 1 logits. The joint
k-th largest of those lists is the exact threshold (a top-k entry is in its own frame's top k), exp runs on
the survivors only, and a query whose list's (k+1)-th entry still reaches the threshold (an exact tie) is
recomputed exactly. Peak memory is chunk_size x window for one context frame plus the stored context; an
unwindowed first frame is met whole, chunk_size x h * w.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ino.data.davis import object_ids
from ino.errors import InoError
from ino.propagation.features import feature_dtype
from ino.propagation.grid_labels import first_frame_labels, labels_to_mask
from ino.propagation.presets import PropagationConfig
from ino.propagation.tiles import Tile, all_keys, tiles, whole

__all__ = ["LabelPropagator", "first_frame_labels", "labels_to_mask"]


@dataclass
class _Frame:
    features: torch.Tensor  # (h, w, C), L2-normalised along C
    labels: torch.Tensor  # (h * w, n_classes) soft labels


@dataclass
class _Chain:
    start: int  # frame whose mask introduced the chain's objects
    valid: torch.Tensor  # (n_classes,) 1 for the channels this chain owns


@dataclass(frozen=True)
class _Entry:
    """Context frame ``t`` of a chain, windowed or not, counted ``count`` times in the chain's joint top-k.

    ``whole``: frame ``t`` has an unwindowed entry this step, so its windowed logits are cut from the unwindowed
    ones: copies of a key then have bitwise equal logits and tie as the references' copies do.
    """

    t: int
    frame: _Frame
    windowed: bool
    count: int
    whole: bool


class LabelPropagator:
    """Streams frames through label propagation, holding only the features and labels still needed."""

    def __init__(
        self, config: PropagationConfig, device: torch.device | str | None = None, *, n_classes: int | None = None
    ) -> None:
        if n_classes is not None and n_classes < 1:
            raise InoError(f"n_classes must be >= 1, got {n_classes}")
        self.config = config
        self.device = None if device is None else torch.device(device)
        self._frames: dict[int, _Frame] = {}
        self._chains: list[_Chain] = []
        self._known: set[int] = set()
        self._fixed_classes = n_classes
        self._n_classes = n_classes or 0
        self._t = 0
        self._grid: tuple[int, int] | None = None
        # a disk of radius R holds offsets up to R - 1 along an axis
        self._reach = config.radius - 1 if config.window == "disk" else config.radius

    @property
    def frame_index(self) -> int:
        """Index of the next frame :meth:`step` expects."""
        return self._t

    @property
    def held_frames(self) -> list[int]:
        """The frames whose features and labels are in memory: each chain's first frame and the last n frames."""
        return sorted(self._frames)

    def step(
        self, features: torch.Tensor, ids: np.ndarray | None = None, *, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Soft labels (n_classes, h, w) of the next frame from its features (C, h, w).

        Frame 0 needs ``ids`` (a full-resolution id map) or ``labels``. Later, ids not seen before start new
        chains and older ids in them are ignored; n_classes grows to the largest id seen so far plus one, unless
        it was fixed when the propagator was made. ``labels`` (float (n_classes, h, w) on the feature grid, e.g.
        keypoint heat maps or part probabilities) replace ``ids`` on frame 0: chain 0 owns every channel, and
        they are stored unchanged (in the label dtype: float32, float64 for float64 features) as frame 0's
        context labels, so each output is a convex combination of them.
        """
        if features.ndim != 3:
            raise InoError(f"expected features of shape (C, h, w), got {tuple(features.shape)}")
        if self._t == 0 and ids is None and labels is None:
            raise InoError("frame 0 needs a mask or soft labels: propagation starts from the first frame's labels")
        if self._grid is not None and tuple(features.shape[1:]) != self._grid:
            raise InoError(f"frame {self._t}: feature grid {tuple(features.shape[1:])} differs from {self._grid}")
        if labels is not None:
            self._check_labels(labels, (features.shape[1], features.shape[2]), ids is not None)
        self.device = features.device if self.device is None else self.device
        self._grid = (features.shape[1], features.shape[2])
        dtype = features.dtype if features.dtype == torch.float64 else feature_dtype(self.config)
        normalised = F.normalize(features.to(self.device, torch.promote_types(dtype, torch.float32)), dim=0)
        query = normalised.permute(1, 2, 0).contiguous().to(dtype)
        label_dtype = torch.promote_types(dtype, torch.float32)
        merged = torch.zeros(query.shape[0] * query.shape[1], self._n_classes, device=self.device, dtype=label_dtype)
        if self._chains:
            contexts = [self._context(c.start) for c in self._chains]
            for chain, pred in zip(self._chains, self._predict(query, contexts), strict=True):
                merged += pred * chain.valid
        if labels is not None:
            merged = self._start(labels, label_dtype)
        elif ids is not None:
            merged = self._inject(merged, ids)
        self._frames[self._t] = _Frame(query, merged)
        needed = {c.start for c in self._chains} | set(range(self._t + 1 - self.config.n_last_frames, self._t + 1))
        self._frames = {t: f for t, f in self._frames.items() if t in needed}
        self._t += 1
        return merged.T.reshape(-1, *self._grid)

    def _context(self, start: int) -> dict[tuple[int, bool], int]:
        """A chain's context as a multiset: (frame, windowed) -> times counted, the chain's first frame first.

        The short context is the last ``n_last_frames`` frames after ``start``; with ``pad_context`` it always
        holds ``n_last_frames`` entries, those before ``start`` being copies of it, as the references pad a
        video's start with copies of frame 0 (a chain that starts mid-video is treated as a video starting
        there). The first frame is windowed unless ``window_first_frame`` is off; its windowed copies then are
        entries of their own.
        """
        cfg, t = self.config, self._t
        if cfg.pad_context:
            short = [max(start, u) for u in range(t - cfg.n_last_frames, t)]
        else:
            short = list(range(max(t - cfg.n_last_frames, start + 1), t))
        context = {(start, cfg.window_first_frame): 1}
        for u in short:
            context[(u, True)] = context.get((u, True), 0) + 1
        return context

    def _check_labels(self, labels: torch.Tensor, grid: tuple[int, int], with_ids: bool) -> None:
        """One clear error for soft labels given with ids, after frame 0, or of the wrong shape or values."""
        if with_ids or self._t:
            raise InoError(f"frame {self._t}: soft labels start a video, on frame 0 and instead of a mask")
        if labels.ndim != 3 or labels.shape[0] < 1 or tuple(labels.shape[1:]) != grid or not labels.is_floating_point():
            raise InoError(
                f"soft labels must be a float tensor (n_classes, {grid[0]}, {grid[1]}) on the feature grid, "
                f"got shape {tuple(labels.shape)} dtype {labels.dtype}"
            )
        if self._fixed_classes not in (None, labels.shape[0]):
            raise InoError(f"soft labels have {labels.shape[0]} channels, this propagator {self._fixed_classes}")
        if not torch.isfinite(labels).all():
            raise InoError("soft labels hold NaN or infinite values")

    def _start(self, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Frame 0's context labels (hw, n_classes) from soft labels, and chain 0 owning all their channels.

        Ids of a later mask start new chains from n_classes on: the channels are taken.
        """
        self._n_classes = labels.shape[0]
        self._known = set(range(self._n_classes))
        self._chains.append(_Chain(0, torch.ones(self._n_classes, device=self.device, dtype=dtype)))
        return labels.to(self.device, dtype).flatten(1).T.contiguous()

    def _inject(self, merged: torch.Tensor, ids: np.ndarray) -> torch.Tensor:
        """Start a chain for the ids first seen in this mask and paste their labels over the prediction."""
        ids = object_ids(ids)
        new = {int(i) for i in np.unique(ids)} - self._known - ({0} if self._t else set())
        if not new:
            return merged
        if self._fixed_classes is not None and max(new) >= self._fixed_classes:
            raise InoError(f"object id {max(new)} does not fit in the {self._fixed_classes} classes")
        self._known |= new
        if max(new) >= self._n_classes:
            extra = max(new) + 1 - self._n_classes
            for frame in self._frames.values():
                frame.labels = F.pad(frame.labels, (0, extra))
            for chain in self._chains:
                chain.valid = F.pad(chain.valid, (0, extra))
            merged = F.pad(merged, (0, extra))
            self._n_classes += extra
        init = first_frame_labels(ids, self._grid, self.config, self._n_classes, keep=new)
        init = init.to(self.device, merged.dtype).flatten(1).T
        coverage = init.sum(dim=1, keepdim=True)
        valid = (init.amax(dim=0) > 0).to(merged.dtype)
        if valid.any():
            self._chains.append(_Chain(self._t, valid))
        return (1 - coverage) * merged + coverage * init

    def _predict(self, query: torch.Tensor, contexts: list[dict[tuple[int, bool], int]]) -> list[torch.Tensor]:
        """Each chain's prediction (hw, n_classes); per-entry top-(k+1) lists are shared between chains."""
        h, w, _ = query.shape
        cfg = self.config
        whole = {t for context in contexts for t, windowed in context if not windowed}
        chains = [
            [_Entry(t, self._frames[t], windowed, count, t in whole) for (t, windowed), count in context.items()]
            for context in contexts
        ]
        distinct = {(e.t, e.windowed): e for entries in chains for e in entries}
        dtype = chains[0][0].frame.labels.dtype
        outputs = [query.new_empty(h * w, self._n_classes, dtype=dtype) for _ in chains]
        for tile in tiles(h, w, self._reach, cfg.chunk_size):
            q = query[tile.rows, tile.cols].reshape(-1, query.shape[2])
            outside = tile.outside(cfg.radius, cfg.window == "disk", query.device)
            lists = self._frame_tops(q, list(distinct.values()), tile, outside)
            for entries, out in zip(chains, outputs, strict=True):
                values, indices, truncated = _stack([lists[(e.t, e.windowed)] for e in entries])
                pred, threshold, top, tied = self._combine(values, indices, entries, truncated)
                if tied.any():
                    pred[tied] = self._exact(q, tied, threshold[tied], top[tied], entries, tile, outside)
                out[tile.query_index.to(query.device)] = pred
        return outputs

    def _frame_tops(
        self, q: torch.Tensor, entries: list[_Entry], tile: Tile, outside: torch.Tensor | None
    ) -> dict[tuple[int, bool], tuple[torch.Tensor, torch.Tensor, bool]]:
        """Per (frame, windowed): the k + 1 largest logits per query, their key indices, and whether keys were cut.

        A frame with an unwindowed entry gets its lists from one product against the whole frame.
        """
        lists = {}
        frames: dict[int, list[_Entry]] = {}
        for entry in entries:
            frames.setdefault(entry.t, []).append(entry)
        for group in frames.values():
            first = group[0]
            if first.whole:
                h, w = first.frame.features.shape[:2]
                logits = self._logits(q, first.frame, whole(tile, h, w), None)
            else:
                logits = self._logits(q, first.frame, tile, outside)
            for entry in group:
                cut, key_index = self._cut(logits, entry, tile, outside)
                values, positions = cut.topk(min(self.config.topk + 1, cut.shape[1]), dim=1)
                lists[(entry.t, entry.windowed)] = (values, key_index[positions], cut.shape[1] > values.shape[1])
        return lists

    def _entry_logits(
        self, q: torch.Tensor, entry: _Entry, tile: Tile, outside: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """An entry's logits against its keys (-inf outside the window when windowed) and those keys' indices."""
        if entry.whole:
            h, w = entry.frame.features.shape[:2]
            return self._cut(self._logits(q, entry.frame, whole(tile, h, w), None), entry, tile, outside)
        return self._cut(self._logits(q, entry.frame, tile, outside), entry, tile, outside)

    def _cut(
        self, logits: torch.Tensor, entry: _Entry, tile: Tile, outside: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The entry's logits and key indices from the frame's logits (against the whole frame when ``whole``)."""
        if not entry.whole:
            return logits, tile.key_index.to(logits.device)
        if not entry.windowed:
            return logits, all_keys(*entry.frame.features.shape[:2]).to(logits.device)
        key_index = tile.key_index.to(logits.device)
        windowed = logits[:, key_index]
        if outside is not None:
            windowed.masked_fill_(outside, float("-inf"))
        return windowed, key_index

    def _logits(self, q: torch.Tensor, frame: _Frame, tile: Tile, outside: torch.Tensor | None) -> torch.Tensor:
        """Windowed affinities of a query tile to one context frame, always in float32 (or float64).

        Half-precision features are stored as such (half the context memory) but multiplied in float32: bf16
        logits keep 8 mantissa bits, ~0.004 at a cosine of 0.9, which reorders the top-k (davis-dev, random
        ViT-S/8, 4 frames: -0.064 J&F with bf16 products, +0.0004 with float32 ones; docs/propagation.md).
        """
        compute = torch.promote_types(q.dtype, torch.float32)
        keys = frame.features[tile.key_rows, tile.key_cols].reshape(-1, q.shape[1])
        logits = q.to(compute) @ keys.to(compute).T
        if outside is not None:
            logits.masked_fill_(outside, float("-inf"))
        return logits

    def _combine(
        self, values: torch.Tensor, indices: torch.Tensor, entries: list[_Entry], truncated: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Predictions from the candidate lists (entries, queries, k+1), the joint k-th largest and largest logit.

        The weights are a softmax over the survivors, shifted by each query's largest logit: exp(logit / T)
        overflows float32 once logit / T passes ~88 (a cosine of 0.9 at T = 0.01), while the shifted exponents
        are <= 0, so any positive temperature works and T -> 0 tends to the top-1 key. Also flags the queries
        where a list may have cut off a tie at the threshold: their prediction is invalid and must come from
        :meth:`_exact`.
        """
        n_entries, n_queries, listed = values.shape
        dtype = entries[0].frame.labels.dtype
        candidates = values.permute(1, 0, 2).reshape(n_queries, -1).to(dtype)
        counts = _counts(entries, dtype, values.device)
        multiplicity = None if counts is None else counts.repeat_interleave(listed)
        threshold = self._threshold(candidates, multiplicity)
        top = candidates.amax(dim=1, keepdim=True)
        weights = self._weights(candidates, multiplicity, threshold, top)
        weights = weights / weights.sum(dim=1, keepdim=True)
        labels = torch.cat([e.frame.labels[i] for e, i in zip(entries, indices, strict=True)], dim=1)
        pred = (weights.view(n_queries, n_entries * listed, 1) * labels).sum(dim=1)
        at_end = values[:, :, -1].T.to(threshold.dtype) >= threshold
        tied = (at_end & truncated.to(values.device)).any(dim=1)
        return pred, threshold, top, tied

    def _threshold(self, candidates: torch.Tensor, multiplicity: torch.Tensor | None) -> torch.Tensor:
        """(queries, 1) the k-th largest candidate, each counted ``multiplicity`` times (the smallest if fewer)."""
        k = self.config.topk
        if multiplicity is None:
            return candidates.topk(min(k, candidates.shape[1]), dim=1).values[:, -1:]
        ordered, order = candidates.sort(dim=1, descending=True)
        reached = (multiplicity[order].cumsum(dim=1) < k).sum(dim=1, keepdim=True)
        return ordered.gather(1, reached.clamp(max=candidates.shape[1] - 1))

    def _weights(
        self, logits: torch.Tensor, multiplicity: torch.Tensor | None, threshold: torch.Tensor, top: torch.Tensor
    ) -> torch.Tensor:
        """Unnormalised weights of the top-k: every entry >= the threshold (``keep``), or exactly k (``exact``).

        ``exact`` counts the entries above the threshold fully and lets those equal to it share the slots left
        equally: identical copies of a key give the same result whichever the references' torch.topk keeps, and
        distinct keys tied exactly get the mean over the choices, which no tie order can promise.
        """
        affinity = self._affinity(logits, top)
        if self.config.topk_ties == "keep":
            weights = torch.where(logits >= threshold, affinity, 0)
            return weights if multiplicity is None else weights * multiplicity
        counts = torch.ones_like(logits[0]) if multiplicity is None else multiplicity
        above, at = logits > threshold, logits == threshold
        share = self._share((above * counts).sum(dim=1, keepdim=True), (at * counts).sum(dim=1, keepdim=True))
        return torch.where(above, affinity * counts, torch.where(at, affinity * counts * share, 0))

    def _share(self, n_above: torch.Tensor, n_at: torch.Tensor) -> torch.Tensor:
        """The fraction of the entries tied at the threshold that fill the top-k slots left by those above."""
        return ((self.config.topk - n_above) / n_at).clamp(0, 1)

    def _affinity(self, logits: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        """exp((logit - top) / T): the affinity exp(logit / T) up to the per-query factor the normalisation drops."""
        return torch.exp((logits - top) / self.config.temperature)

    def _exact(
        self,
        q: torch.Tensor,
        rows: torch.Tensor,
        threshold: torch.Tensor,
        top: torch.Tensor,
        entries: list[_Entry],
        tile: Tile,
        outside: torch.Tensor | None,
    ) -> torch.Tensor:
        """Predictions for tied queries from every key >= their threshold (``exact``: sharing the last slots).

        The logits are recomputed for the whole tile, as in :meth:`_entry_logits`, so that they are bitwise the
        values the threshold and the shift ``top`` came from; only the tied rows are kept.
        """
        dtype = entries[0].frame.labels.dtype
        n_classes = entries[0].frame.labels.shape[1]
        total = torch.zeros(2, threshold.shape[0], n_classes, device=q.device, dtype=dtype)
        mass = torch.zeros(2, *threshold.shape, device=q.device, dtype=dtype)
        count = torch.zeros_like(mass)
        for entry in entries:
            logits, key_index = self._entry_logits(q, entry, tile, outside)
            logits = logits[rows].to(dtype)
            affinity = self._affinity(logits, top)
            labels = entry.frame.labels[key_index]
            if self.config.topk_ties == "keep":
                weights = torch.where(logits >= threshold, affinity, 0)
                weights = weights if entry.count == 1 else weights * entry.count
                total[0] += weights @ labels
                mass[0] += weights.sum(dim=1, keepdim=True)
                continue
            for side, chosen in enumerate((logits > threshold, logits == threshold)):
                weights = torch.where(chosen, affinity, 0) * entry.count
                total[side] += weights @ labels
                mass[side] += weights.sum(dim=1, keepdim=True)
                count[side] += chosen.sum(dim=1, keepdim=True) * entry.count
        if self.config.topk_ties == "keep":
            return total[0] / mass[0]
        share = self._share(count[0], count[1])
        return (total[0] + share * total[1]) / (mass[0] + share * mass[1])


def _counts(entries: list[_Entry], dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
    """Each entry's count in the joint top-k, or None when all are 1 (INO's context: every frame once)."""
    if all(e.count == 1 for e in entries):
        return None
    return torch.tensor([e.count for e in entries], dtype=dtype, device=device)


def _stack(lists: list[tuple[torch.Tensor, torch.Tensor, bool]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(entries, queries, L) values and key indices, and whether each list was cut (its keys outnumber it).

    Lists shorter than the longest (a window with fewer than k + 1 keys beside an unwindowed frame) are padded
    with -inf, which no weight reaches.
    """
    length = max(v.shape[1] for v, _, _ in lists)
    values = [F.pad(v, (0, length - v.shape[1]), value=float("-inf")) for v, _, _ in lists]
    indices = [F.pad(i, (0, length - i.shape[1])) for _, i, _ in lists]
    truncated = torch.tensor([cut for _, _, cut in lists])
    return torch.stack(values), torch.stack(indices), truncated
