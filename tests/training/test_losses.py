"""INO's losses against plain per-pair / per-frame / per-clip loops written from docs/method.md §5, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ino.configs.schema import LossConfig, MaskConfig
from ino.data.masking import step_mask
from ino.errors import InoError
from ino.training.losses import Center, InoLoss, affinity_loss, mim_loss, out_loss, teacher_entropy

T, B, M, N, C = 4, 3, 2, 12, 16
TAU_S, TAU_T, MOMENTUM = 0.1, 0.04, 0.9


def logits(*shape: int, seed: int, grad: bool = False) -> torch.Tensor:
    """Head-like logits in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1
    return x.requires_grad_(grad)


def center(seed: int) -> Center:
    c = Center(C, MOMENTUM).double()
    c.center.copy_(logits(1, C, seed=seed) * 0.1)
    return c


def ce(q: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Batch-mean CE(q, z) = mean_rows -sum_C q * log_softmax(z / tau_s)."""
    return -(q * F.log_softmax(z / TAU_S, dim=-1)).sum(-1).mean()


def reference_out(teacher, glob, loc, c, mode):
    """docs/method.md §5.1 literally: pairs (t, t + T/2), views ĝ_a, ĝ_b, locals of a, then of b; centre per pair."""
    frames, locals_ = teacher.shape[0], loc.shape[1]
    pairs = frames // 2
    c = c.clone()
    total, g2g_total, l2g_total = 0.0, 0.0, 0.0
    for p in range(pairs):
        a, b = p, p + pairs
        views = [glob[a], glob[b]] + [loc[a, j] for j in range(locals_)] + [loc[b, j] for j in range(locals_)]
        g2g, l2g, n_terms = 0.0, 0.0, 0
        for iq, frame in enumerate((a, b)):
            q = F.softmax((teacher[frame] - c) / TAU_T, dim=-1)
            for v, z in enumerate(views):
                if v == iq:
                    continue
                n_terms += 1
                if v < 2:
                    g2g = g2g + ce(q, z)
                else:
                    l2g = l2g + ce(q, z)
        assert n_terms == 2 + 4 * locals_
        if mode == "faithful":
            g2g, l2g = g2g / n_terms, l2g / n_terms
        total = total + g2g + l2g
        g2g_total, l2g_total = g2g_total + g2g, l2g_total + l2g
        c = MOMENTUM * c + (1 - MOMENTUM) * torch.cat([teacher[a], teacher[b]]).mean(0, keepdim=True)
    return total / pairs, g2g_total / pairs, l2g_total / pairs, c


def reference_mim(teacher, student, masks, c):
    """docs/method.md §5.2: per frame, mean CE over the masked tokens of all clips; centre after each frame."""
    c = c.clone()
    losses = []
    for t in range(teacher.shape[0]):
        rows_t = torch.cat([teacher[t, b][masks[t][b]] for b in range(teacher.shape[1])])
        rows_s = torch.cat([student[t, b][masks[t][b]] for b in range(teacher.shape[1])])
        if len(rows_t) == 0:
            continue
        losses.append(ce(F.softmax((rows_t - c) / TAU_T, dim=-1), rows_s))
        c = MOMENTUM * c + (1 - MOMENTUM) * rows_t.mean(0, keepdim=True)
    return (torch.stack(losses).mean() if losses else torch.zeros((), dtype=torch.float64)), c


def reference_aff(teacher, student, masks, tau_t=TAU_T):
    """docs/method.md §5.3: per (t, clip) K_t x K_{t+1} cosine affinities, row-wise CE, mean over every row."""
    rows = []
    for t in range(teacher.shape[0] - 1):
        for b in range(teacher.shape[1]):
            q_t = [F.normalize(x[b][masks[s][b]], dim=-1) for x, s in ((teacher[t], t), (teacher[t + 1], t + 1))]
            q_s = [F.normalize(x[b][masks[s][b]], dim=-1) for x, s in ((student[t], t), (student[t + 1], t + 1))]
            if len(q_t[0]) == 0 or len(q_t[1]) == 0:
                continue
            target = F.softmax(q_t[0] @ q_t[1].T / tau_t, dim=-1)
            rows.append(-(target * F.log_softmax(q_s[0] @ q_s[1].T / TAU_S, dim=-1)).sum(-1))
    return torch.cat(rows).mean()


def shared(mask):
    return [[mask] * B for _ in range(T)]


def random_mask(*shape: int, seed: int, p: float = 0.4) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < p


@pytest.mark.parametrize("mode", ["faithful", "paper"])
def test_out_loss_matches_the_pair_loop_and_moves_the_centre_after_each_pair(mode):
    teacher, glob, loc = (
        logits(T, B, C, seed=0, grad=True),
        logits(T, B, C, seed=1, grad=True),
        logits(T, M, B, C, seed=2, grad=True),
    )
    c = center(3)
    c0 = c.center.clone()
    loss, parts = out_loss(teacher, glob, loc, c, TAU_S, TAU_T, mode)
    want, want_g2g, want_l2g, want_c = reference_out(teacher.detach(), glob.detach(), loc.detach(), c0, mode)
    torch.testing.assert_close(loss, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(parts["g2g"], want_g2g, rtol=0, atol=1e-6)
    torch.testing.assert_close(parts["l2g"], want_l2g, rtol=0, atol=1e-6)
    torch.testing.assert_close(c.center, want_c, rtol=0, atol=1e-12)
    # two sequential EMA steps: c2 = 0.81 c0 + 0.09 mean(pair 0) + 0.1 mean(pair 1)
    means = [torch.cat([teacher[p], teacher[p + 2]]).detach().mean(0, keepdim=True) for p in range(2)]
    torch.testing.assert_close(c.center, 0.81 * c0 + 0.09 * means[0] + 0.1 * means[1], rtol=0, atol=1e-12)
    loss.backward()
    assert teacher.grad is None
    assert glob.grad.abs().sum() > 0 and loc.grad.abs().sum() > 0


def test_out_loss_with_six_frames_and_no_local_crops():
    teacher, glob, loc = logits(6, B, C, seed=4), logits(6, B, C, seed=5), logits(6, 0, B, C, seed=6)
    c = center(7)
    loss, parts = out_loss(teacher, glob, loc, c)
    want, _, want_l2g, want_c = reference_out(teacher, glob, loc, center(7).center, "faithful")
    torch.testing.assert_close(loss, want, rtol=0, atol=1e-6)
    assert parts["l2g"] == 0 and want_l2g == 0
    torch.testing.assert_close(c.center, want_c, rtol=0, atol=1e-12)


def test_out_loss_rejects_odd_clips_and_bad_shapes():
    with pytest.raises(ValueError, match="even T"):
        out_loss(logits(3, B, C, seed=0), logits(3, B, C, seed=0), logits(3, M, B, C, seed=0), center(0))
    with pytest.raises(ValueError, match="shapes disagree"):
        out_loss(logits(T, B, C, seed=0), logits(T, B, C, seed=0), logits(T, B, M, C, seed=0), center(0))
    with pytest.raises(ValueError, match="mode"):
        out_loss(logits(T, B, C, seed=0), logits(T, B, C, seed=0), logits(T, M, B, C, seed=0), center(0), mode="x")


@pytest.mark.parametrize("layout", ["shared", "per_clip", "per_frame", "gathered"])
def test_mim_matches_the_frame_loop_with_one_centre_step_per_frame(layout):
    teacher, student = logits(T, B, N, C, seed=10, grad=True), logits(T, B, N, C, seed=11, grad=True)
    if layout == "shared":
        mask = random_mask(N, seed=12)
        masks = shared(mask)
    elif layout == "per_clip":
        mask = random_mask(B, N, seed=13)
        mask[1] = False  # an unmasked clip
        masks = [list(mask)] * T
    elif layout == "per_frame":
        mask = random_mask(T, B, N, seed=14)
        mask[2] = False  # a frame without masked tokens is left out of the mean and of the centre steps
        masks = [list(mask[t]) for t in range(T)]
    else:
        mask = None
        masks = shared(torch.ones(N, dtype=torch.bool))
    c = center(15)
    c0 = c.center.clone()
    loss = mim_loss(teacher, student, mask, c, TAU_S, TAU_T)
    want, want_c = reference_mim(teacher.detach(), student.detach(), masks, c0)
    torch.testing.assert_close(loss, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(c.center, want_c, rtol=0, atol=1e-12)
    loss.backward()
    assert teacher.grad is None
    unmasked = ~torch.stack([torch.stack(m) for m in masks])
    assert student.grad[unmasked].abs().sum() == 0 and student.grad.abs().sum() > 0


def test_mim_centre_takes_exactly_t_steps_from_the_masked_tokens_only():
    teacher, student = logits(T, B, N, C, seed=20), logits(T, B, N, C, seed=21)
    mask = random_mask(N, seed=22)
    c = center(23)
    expected = c.center.clone()
    for t in range(T):
        expected = 0.9 * expected + 0.1 * teacher[t][:, mask].reshape(-1, C).mean(0, keepdim=True)
    mim_loss(teacher, student, mask, c)
    torch.testing.assert_close(c.center, expected, rtol=0, atol=1e-12)


def test_empty_shared_mask_gives_zero_and_leaves_the_centre_alone():
    teacher, student = logits(T, B, N, C, seed=30), logits(T, B, N, C, seed=31, grad=True)
    empty = torch.zeros(N, dtype=torch.bool)
    c = center(32)
    before = c.center.clone()
    assert mim_loss(teacher, student, empty, c) == 0
    assert affinity_loss(teacher, student, empty) == 0
    assert torch.equal(c.center, before)
    # per-clip masks that happen to be all empty: zero loss, centre unchanged as well
    assert mim_loss(teacher, student, torch.zeros(B, N, dtype=torch.bool), c) == 0
    assert torch.equal(c.center, before)


@pytest.mark.parametrize("layout", ["shared", "per_clip", "per_frame", "gathered"])
def test_affinity_matches_the_clip_loop(layout):
    teacher, student = logits(T, B, N, C, seed=40, grad=True), logits(T, B, N, C, seed=41, grad=True)
    if layout == "shared":
        mask = random_mask(N, seed=42)
        masks = shared(mask)
    elif layout == "per_clip":  # paper block masks: K differs between clips, one clip unmasked
        mask = random_mask(B, N, seed=43)
        mask[0] = False
        masks = [list(mask)] * T
    elif layout == "per_frame":  # rectangular K_t x K_{t+1} affinities
        mask = random_mask(T, B, N, seed=44)
        masks = [list(mask[t]) for t in range(T)]
    else:
        mask = None
        masks = shared(torch.ones(N, dtype=torch.bool))
    loss = affinity_loss(teacher, student, mask, TAU_S, 0.06)
    torch.testing.assert_close(loss, reference_aff(teacher.detach(), student.detach(), masks, 0.06), rtol=0, atol=1e-6)
    loss.backward()
    assert teacher.grad is None
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0


def test_losses_compute_in_float32_under_autocast():
    teacher, student = logits(T, B, N, C, seed=50).bfloat16(), logits(T, B, N, C, seed=51).bfloat16()
    mask = random_mask(N, seed=52)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        aff = affinity_loss(teacher, student, mask)
        mim = mim_loss(teacher, student, mask, Center(C))
        out, _ = out_loss(teacher[:, :, 0], student[:, :, 0], student[:, :, :M].transpose(1, 2), Center(C))
    assert aff.dtype == mim.dtype == out.dtype == torch.float32
    want = affinity_loss(teacher.float(), student.float(), mask)
    torch.testing.assert_close(aff, want)


def test_teacher_entropy_bounds():
    uniform = torch.zeros(5, C)
    assert teacher_entropy(uniform, torch.zeros(1, C)).item() == pytest.approx(torch.log(torch.tensor(C)).item())
    peaked = torch.zeros(5, C)
    peaked[:, 0] = 1.0
    assert teacher_entropy(peaked, torch.zeros(1, C), tau_t=0.01).item() < 1e-6


def test_ino_loss_combines_weighted_terms_and_skips_zero_weights():
    teacher_cls, glob, loc = logits(T, B, C, seed=60), logits(T, B, C, seed=61, grad=True), logits(T, M, B, C, seed=62)
    teacher_pat, student_pat = logits(T, B, N, C, seed=63), logits(T, B, N, C, seed=64, grad=True)
    mask = random_mask(N, seed=65)
    loss_fn = InoLoss(C, LossConfig(w_out=1.0, w_mim=0.5, w_aff=2.0)).double()
    total, parts = loss_fn(teacher_cls, glob, loc, teacher_pat, student_pat, mask)
    out, _ = out_loss(teacher_cls, glob, loc, Center(C).double())
    mim = mim_loss(teacher_pat, student_pat, mask, Center(C).double())
    aff = affinity_loss(teacher_pat, student_pat, mask)
    torch.testing.assert_close(total, out + 0.5 * mim + 2.0 * aff)
    assert set(parts) == {"out", "g2g", "l2g", "mim", "aff"}
    assert set(loss_fn.state_dict()) == {"center_cls.center", "center_pat.center"}

    no_mim = InoLoss(C, LossConfig(w_out=1.0, w_mim=0.0, w_aff=1.0)).double()
    _, parts = no_mim(teacher_cls, glob, loc, teacher_pat, student_pat, mask)
    assert "mim" not in parts and torch.equal(no_mim.center_pat.center, torch.zeros(1, C, dtype=torch.float64))
    # an unmasked step without patch logits: L_out only
    total, parts = loss_fn(teacher_cls, glob, loc)
    assert set(parts) == {"out", "g2g", "l2g"}
    # nothing to compute still gives a loss that backward accepts
    in_only = InoLoss(C, LossConfig(w_out=0.0, w_mim=1.0, w_aff=1.0)).double()
    total, parts = in_only(teacher_cls, glob, loc)
    total.backward()
    assert parts == {} and total == 0
    with pytest.raises(InoError, match=r"at least one of loss\.w_out"):
        InoLoss(C, LossConfig(w_out=0.0, w_mim=0.0, w_aff=0.0))
    with pytest.raises(ValueError, match="both"):
        loss_fn(teacher_cls, glob, loc, teacher_pat, None, mask)


def _distributed_worker(rank: int, world: int, store_path: str, out_dir: str) -> None:
    """One rank: its own clips, the shared centres all-reduced; writes what it ends with."""
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.FileStore(store_path, world), rank=rank, world_size=world)
    try:
        clips = slice(rank * B, (rank + 1) * B)
        teacher, glob, loc = logits(T, 2 * B, C, seed=70), logits(T, 2 * B, C, seed=71), logits(T, M, 2 * B, C, seed=72)
        c_cls = center(73)
        out_loss(teacher[:, clips], glob[:, clips], loc[:, :, clips], c_cls)
        patches_t, patches_s = logits(T, 2 * B, N, C, seed=74), logits(T, 2 * B, N, C, seed=75)
        masks = random_mask(2 * B, N, seed=76)
        masks[B:] = False  # rank 1 has no masked token at all, yet joins the collective
        c_pat = center(77)
        mim_loss(patches_t[:, clips], patches_s[:, clips], masks[clips], c_pat)
        mask = step_mask(MaskConfig(prob=1.0), seed=5, step=78, rank=rank, clips=B, grid=4)
        torch.save({"cls": c_cls.center, "pat": c_pat.center, "mask": mask}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_two_ranks_share_centres_and_the_step_mask(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_distributed_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    # one process holding both ranks' clips moves the centres exactly as the two ranks together
    c_cls, c_pat = center(73), center(77)
    out_loss(logits(T, 2 * B, C, seed=70), logits(T, 2 * B, C, seed=71), logits(T, M, 2 * B, C, seed=72), c_cls)
    masks = random_mask(2 * B, N, seed=76)
    masks[B:] = False
    mim_loss(logits(T, 2 * B, N, C, seed=74), logits(T, 2 * B, N, C, seed=75), masks, c_pat)
    for state in ranks:
        torch.testing.assert_close(state["cls"], c_cls.center, rtol=0, atol=1e-12)
        torch.testing.assert_close(state["pat"], c_pat.center, rtol=0, atol=1e-12)
        # every rank draws the step's mask itself, and all draw the one-process mask (no broadcast needed)
        assert torch.equal(state["mask"], step_mask(MaskConfig(prob=1.0), seed=5, step=78, rank=0, clips=B, grid=4))
