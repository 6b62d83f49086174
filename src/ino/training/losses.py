"""INO's three losses and their centres (docs/method.md §5), vectorised over frames, views and clips.

Shapes: T frames per clip, B clips, M local crops per frame, N patches per global crop, C head outputs. Every
input is already split along those axes, e.g. ``teacher_cls`` (T, B, C) and ``student_local_cls`` (T, M, B, C);
reshaping a flat head output in the (frame, crop, clip) order training uses gives exactly this. All inputs are
head logits (cosines in [-1, 1]). Teacher inputs are detached here, so gradients only reach student inputs.

With P_t(z) = softmax((z - c) / tau_t), log P_s(z) = log_softmax(z / tau_s), CE(q, z) = -sum_C q log P_s(z):

- ``out_loss`` (g2g + l2g): frame pairs (t, t + T/2). Faithful: per pair, the mean over 2 + 4M (teacher global,
  student view) terms of the batch-mean CE, never matching a teacher with its own view; then the mean over
  pairs. Paper (Eq. 1 + 2): g2g = mean over pairs of the *sum* of its 2 cross-global terms, l2g = mean over
  pairs of the *sum* of its 2 x 2M teacher-global x local terms, L = g2g + l2g (each term still a batch mean).
- ``mim_loss``: per frame, the mean CE over the masked tokens of all clips; then the mean over frames.
- ``affinity_loss``: cosine affinities of the masked tokens between consecutive frames; softmax over frame t+1.

Centres follow the official code, which updates them *between* chunks of one step: c_cls once per frame pair
and c_pat once per frame, each chunk's teacher softmax using the centre left by the previous chunks. The chunks'
means are all-reduced in one collective, then the short recursion runs on (C,) vectors.

Losses compute in float32 (float64 inputs stay float64) with autocast off: the 4096-way softmaxes at
temperature 0.04 and the affinity matmuls are too sharp for float16 / bfloat16.

Masks: a shared (N,) bool mask (faithful), a per-clip (B, N) mask shared by the clip's frames (paper blocks) or a
general (T, B, N) one; ``None`` means the patch inputs hold only masked tokens already (the caller gathered them
before the head to save compute). With a shared mask that is all False, MIM and in_aff return 0 and touch no
centre and no collective, on every rank alike. With per-clip masks the number of masked tokens differs between
clips and ranks, so those calls always run the collective (every rank must call them every step) and a centre
step with no masked token on any rank is skipped.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ino.configs.schema import OUT_MODES, LossConfig
from ino.data.masking import per_frame_mask

OutMode = Literal["faithful", "paper"]


def _wide(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least float32 (float64 stays float64)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _no_autocast(x: torch.Tensor) -> torch.autocast:
    return torch.autocast(device_type=x.device.type, enabled=False)


class Center(nn.Module):
    """An EMA centre (1, C) subtracted from teacher logits before their softmax; DINO's anti-collapse term.

    The buffer is named ``center`` like the official ``DINOLoss.center``, so official loss states map to it.
    """

    center: torch.Tensor

    def __init__(self, dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"centre momentum must lie in [0, 1], got {momentum}")
        self.momentum = momentum
        self.register_buffer("center", torch.zeros(1, dim))

    @torch.no_grad()
    def advance(self, sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Apply S EMA steps in order; return the (S, C) centres in force *before* each step.

        Step s moves the centre towards ``sums[s] / counts[s]`` (a chunk's summed raw teacher logits and its row
        count), summed over ranks first when torch.distributed is initialised: one all-reduce for all steps.
        Equal row counts on every rank make this DINO's sum / (rows x world size). A step with no row on any
        rank leaves the centre unchanged.
        """
        stats = torch.cat([sums, counts.unsqueeze(1).to(sums.dtype)], dim=1).to(self.center.dtype)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)
        means, totals = stats[:, :-1] / stats[:, -1:].clamp(min=1), stats[:, -1]
        current = self.center[0]
        before = []
        for mean, total in zip(means, totals, strict=True):
            before.append(current)
            current = torch.where(total > 0, self.momentum * current + (1 - self.momentum) * mean, current)
        trail = torch.stack(before)  # stack before overwriting the buffer: the first entry is a view of it
        self.center.copy_(current.unsqueeze(0))
        return trail


def teacher_entropy(teacher_logits: torch.Tensor, center: torch.Tensor, tau_t: float = 0.04) -> torch.Tensor:
    """Mean entropy (nats) of the teacher's centred, sharpened distributions over the last dim, for logging.

    Near log(C) means uniform outputs, near 0 means one-hot ones: both extremes signal collapse.
    """
    with torch.no_grad(), _no_autocast(teacher_logits):
        logp = F.log_softmax((_wide(teacher_logits) - center) / tau_t, dim=-1)
        return -(logp.exp() * logp).sum(-1).mean()


def out_loss(
    teacher_cls: torch.Tensor,
    student_global_cls: torch.Tensor,
    student_local_cls: torch.Tensor,
    center: Center,
    tau_s: float = 0.1,
    tau_t: float = 0.04,
    mode: OutMode = "faithful",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Out-generative loss over frame pairs (t, t + T/2) and the T/2 sequential c_cls updates (docs/method.md §5.1).

    ``teacher_cls`` and ``student_global_cls`` are (T, B, C), ``student_local_cls`` (T, M, B, C). Returns the loss
    and its detached parts ``{"g2g", "l2g"}`` with ``g2g + l2g == loss`` in both modes (faithful: each part
    already divided by the 2 + 4M terms).
    """
    if mode not in OUT_MODES:
        raise ValueError(f"unknown out-loss mode {mode!r}; choose one of {', '.join(OUT_MODES)}")
    frames, clips, dim = teacher_cls.shape
    if frames < 2 or frames % 2:
        raise ValueError(f"the out loss pairs frame t with t + T/2 and needs an even T >= 2, got T={frames}")
    locals_ = student_local_cls.shape[1]
    if student_global_cls.shape != teacher_cls.shape or student_local_cls.shape != (frames, locals_, clips, dim):
        raise ValueError(
            f"out-loss shapes disagree: teacher {tuple(teacher_cls.shape)}, student global "
            f"{tuple(student_global_cls.shape)}, student local {tuple(student_local_cls.shape)} (want (T, M, B, C))"
        )
    pairs = frames // 2
    with _no_autocast(teacher_cls):
        # axis 0 picks the pair member (frame p or p + T/2), axis 1 the pair p
        teacher = _wide(teacher_cls.detach()).reshape(2, pairs, clips, dim)
        counts = torch.full((pairs,), 2 * clips, device=teacher.device)
        centers = center.advance(teacher.sum(dim=(0, 2)), counts)  # (pairs, C)
        targets = F.softmax((teacher - centers[:, None]) / tau_t, dim=-1)
        glob = F.log_softmax(_wide(student_global_cls).reshape(2, pairs, clips, dim) / tau_s, dim=-1)
        local_sum = F.log_softmax(_wide(student_local_cls) / tau_s, dim=-1).reshape(2, pairs, locals_, clips, dim)
        local_sum = local_sum.sum(dim=(0, 2))  # (pairs, B, C): every local crop of both frames of the pair
        # teacher of frame a meets the student global of frame b and vice versa: flip the member axis
        g2g = -(targets * glob.flip(0)).sum(-1).mean(-1).sum(0)  # (pairs,): sum of 2 batch-mean CEs
        l2g = -(targets * local_sum).sum(-1).mean(-1).sum(0)  # (pairs,): sum of 2 x 2M batch-mean CEs
        if mode == "faithful":
            terms = 2 + 4 * locals_
            g2g, l2g = g2g / terms, l2g / terms
        g2g, l2g = g2g.mean(), l2g.mean()
    return g2g + l2g, {"g2g": g2g.detach(), "l2g": l2g.detach()}


def mim_loss(
    teacher_patch: torch.Tensor,
    student_patch: torch.Tensor,
    mask: torch.Tensor | None,
    center: Center,
    tau_s: float = 0.1,
    tau_t: float = 0.04,
) -> torch.Tensor:
    """in_mim: masked-token self-distillation per frame with T sequential c_pat updates (docs/method.md §5.2).

    Inputs (T, B, N, C). Frame t's loss is the mean CE over its masked tokens (all clips), using c_pat as left
    by frames 0..t-1; c_pat then moves towards the mean raw teacher logit of those tokens. The loss is the mean
    over frames that have masked tokens, 0 when none has.
    """
    frames, _, _, dim = teacher_patch.shape
    if student_patch.shape != teacher_patch.shape:
        raise ValueError(
            f"MIM shapes disagree: teacher {tuple(teacher_patch.shape)}, student {tuple(student_patch.shape)}"
        )
    if mask is not None and mask.dim() == 1 and not mask.any():
        return student_patch.new_zeros(())
    keep = _frame_mask(mask, teacher_patch)
    with _no_autocast(teacher_patch):
        teacher = _wide(teacher_patch.detach())[keep]  # (R, C), rows ordered by frame
        student = _wide(student_patch)[keep]
        counts = keep.sum(dim=(1, 2))
        frame_of_row = torch.repeat_interleave(torch.arange(frames, device=keep.device), counts)
        sums = teacher.new_zeros(frames, dim).index_add_(0, frame_of_row, teacher)
        centers = center.advance(sums, counts)  # (T, C)
        targets = F.softmax((teacher - centers[frame_of_row]) / tau_t, dim=-1)
        ce = -(targets * F.log_softmax(student / tau_s, dim=-1)).sum(-1)
        per_frame = ce.new_zeros(frames).index_add(0, frame_of_row, ce) / counts.clamp(min=1)
        valid = counts > 0
        return (per_frame * valid).sum() / valid.sum().clamp(min=1)


def affinity_loss(
    teacher_patch: torch.Tensor,
    student_patch: torch.Tensor,
    mask: torch.Tensor | None,
    tau_s: float = 0.1,
    tau_t: float = 0.04,
) -> torch.Tensor:
    """in_aff: match the student's inter-frame affinities of masked tokens to the teacher's (docs/method.md §5.3).

    Inputs (T, B, N, C). Per clip and t < T-1: Q_t, Q_{t+1} are the L2-normalised logits of the masked tokens
    (no softmax, no centre), A = Q_t Q_{t+1}^T; row-wise CE between softmax(A_teacher / tau_t) and
    log_softmax(A_student / tau_s); mean over all rows. Rows keep the masked tokens in grid order, so with a
    shared mask row j of frame t and column j of frame t+1 are the same cell.

    Per-clip (or per-frame) masks give each clip its own K: tokens are padded to the largest K, padded columns
    get probability 0 on both sides and padded rows weight 0, so the result is the mean over every real row
    (all (T-1) x sum_b K_b of them) of a softmax over that clip's real tokens; with equal K this is exactly the
    faithful mean over (T-1) x B x K rows.
    """
    frames = teacher_patch.shape[0]
    if frames < 2:
        raise ValueError(f"the affinity loss compares consecutive frames and needs T >= 2, got T={frames}")
    if student_patch.shape != teacher_patch.shape:
        raise ValueError(
            f"affinity shapes disagree: teacher {tuple(teacher_patch.shape)}, student {tuple(student_patch.shape)}"
        )
    if mask is not None and mask.dim() == 1 and not mask.any():
        return student_patch.new_zeros(())
    keep = _frame_mask(mask, teacher_patch)
    counts = keep.sum(-1)  # (T, B)
    width = int(counts.max())
    # stable descending sort puts the masked positions first, in grid order; the first `width` are the tokens
    index = torch.argsort(keep.to(torch.uint8), dim=-1, descending=True, stable=True)[..., :width]
    real = torch.arange(width, device=keep.device) < counts.unsqueeze(-1)  # (T, B, K)
    columns = real[1:].unsqueeze(-2)  # (T-1, B, 1, K): tokens of frame t+1
    rows = real[:-1] & real[1:].any(-1, keepdim=True)  # a row needs at least one column
    with _no_autocast(teacher_patch):
        affinities = []
        for tokens in (teacher_patch.detach(), student_patch):
            picked = torch.gather(_wide(tokens), 2, index.unsqueeze(-1).expand(-1, -1, -1, tokens.shape[-1]))
            unit = F.normalize(picked, dim=-1)
            affinities.append(unit[:-1] @ unit[1:].transpose(-1, -2))  # (T-1, B, K, K)
        teacher_aff, student_aff = affinities
        # a finite fill keeps padded entries at probability 0 without NaN gradients through empty rows
        fill = torch.finfo(teacher_aff.dtype).min
        targets = F.softmax((teacher_aff / tau_t).masked_fill(~columns, fill), dim=-1)
        logp = F.log_softmax((student_aff / tau_s).masked_fill(~columns, fill), dim=-1)
        ce = -(targets * logp).sum(-1)
        return (ce * rows).sum() / rows.sum().clamp(min=1)


def _frame_mask(mask: torch.Tensor | None, patches: torch.Tensor) -> torch.Tensor:
    """The (T, B, N) bool mask for patch tensors (T, B, N, C) on their device; ``None`` selects every token."""
    frames, clips, tokens, _ = patches.shape
    if mask is None:
        return torch.ones(frames, clips, tokens, dtype=torch.bool, device=patches.device)
    keep = per_frame_mask(mask.to(patches.device), frames, clips)
    if keep.shape[-1] != tokens:
        raise ValueError(f"the mask covers {keep.shape[-1]} patches but the tokens have {tokens}")
    return keep


class InoLoss(nn.Module):
    """L = w_out L_out + w_mim L_mim + w_aff L_aff (docs/method.md §5.4) with both centres; weight 0 skips a term.

    The state dict holds ``center_cls.center`` and ``center_pat.center`` (official: ``dino_loss_cls_list.0.center``
    and ``dino_loss_hw_list.0.center``). ``tau_t`` is public so a schedule may set it between steps.
    """

    def __init__(self, out_dim: int = 4096, config: LossConfig | None = None) -> None:
        super().__init__()
        config = config or LossConfig()
        self.weights = (config.w_out, config.w_mim, config.w_aff)
        self.out_mode: OutMode = config.out_mode  # type: ignore[assignment]
        self.tau_s, self.tau_t, self.tau_t_aff = config.tau_s, config.tau_t, config.tau_t_aff
        self.center_cls = Center(out_dim, config.center_momentum)
        self.center_pat = Center(out_dim, config.center_momentum)

    def forward(
        self,
        teacher_cls: torch.Tensor,
        student_global_cls: torch.Tensor,
        student_local_cls: torch.Tensor,
        teacher_patch: torch.Tensor | None = None,
        student_patch: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and detached parts (``out``, ``g2g``, ``l2g``, ``mim``, ``aff``: those computed).

        Pass the patch logits (T, B, N, C) in masked steps, or on every step with per-clip masks (the centre
        collective runs on all ranks together); leave them out in unmasked steps and only L_out is computed.
        """
        if (teacher_patch is None) != (student_patch is None):
            raise ValueError("pass both teacher and student patch logits, or neither")
        w_out, w_mim, w_aff = self.weights
        terms: list[torch.Tensor] = []
        parts: dict[str, torch.Tensor] = {}
        if w_out > 0:
            loss, out_parts = out_loss(
                teacher_cls,
                student_global_cls,
                student_local_cls,
                self.center_cls,
                self.tau_s,
                self.tau_t,
                mode=self.out_mode,
            )
            terms.append(w_out * loss)
            parts.update(out=loss.detach(), **out_parts)
        if teacher_patch is not None and student_patch is not None:  # both or neither, checked above
            if w_mim > 0:
                loss = mim_loss(teacher_patch, student_patch, mask, self.center_pat, self.tau_s, self.tau_t)
                terms.append(w_mim * loss)
                parts["mim"] = loss.detach()
            if w_aff > 0:
                loss = affinity_loss(teacher_patch, student_patch, mask, self.tau_s, self.tau_t_aff)
                terms.append(w_aff * loss)
                parts["aff"] = loss.detach()
        if not terms:
            # still a graph over the student so that every rank can run backward (DDP) in an all-skipped step
            return student_global_cls.sum() * 0.0, parts
        return torch.stack(terms).sum(), parts
