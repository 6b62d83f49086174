"""InoMetaArch: the one training step that the loop, the throughput benchmark and these tests share."""

from __future__ import annotations

import pytest
import torch

from ino.configs.loading import load_config
from ino.errors import InoError
from ino.training.meta_arch import LOSS_TERMS, InoMetaArch, StepSchedule

SCHEDULE = StepSchedule(lr=1e-3, weight_decay=0.04, teacher_momentum=0.9)


def tiny(**masking: object) -> InoMetaArch:
    changes = {"augment": {"global_size": 64, "local_size": 16}, "masking": masking}
    return InoMetaArch(load_config(["tiny"], changes), torch.device("cpu"))


def crops(seed: int, clips: int = 2, frames: int = 4, locals_: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(clips, frames, 3, 64, 64, generator=generator),
        torch.randn(clips, frames, locals_, 3, 16, 16, generator=generator),
    )


def test_the_seed_fixes_the_initial_weights_and_the_teacher_starts_as_the_student() -> None:
    a, b = tiny(), tiny()
    for (name, p), q in zip(a.student.state_dict().items(), b.student.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    for p, q in zip(a.student.parameters(), a.teacher.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not any(p.requires_grad for p in a.teacher.parameters())


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_a_step_sums_its_terms_steps_adamw_and_moves_the_teacher_by_ema(prob: float) -> None:
    meta = tiny(prob=prob)
    student_before = [p.detach().clone() for p in meta.student.parameters()]
    teacher_before = [p.detach().clone() for p in meta.teacher.parameters()]
    record = meta.train_step(*crops(0), step=3, schedule=SCHEDULE)
    assert record["masked"] is (prob == 1.0)
    assert set(LOSS_TERMS) <= set(record) and record["lr"] == SCHEDULE.lr and record["momentum"] == 0.9
    expected = record["out"] + (record["mim"] + record["aff"] if prob else 0.0)
    assert record["loss"] == pytest.approx(expected, rel=1e-5)
    assert (record["mim"] > 0) is (prob == 1.0)
    changed = [not torch.equal(p, q) for p, q in zip(meta.student.parameters(), student_before, strict=True)]
    assert sum(changed) > len(changed) // 2
    for t, t0, s in zip(meta.teacher.parameters(), teacher_before, meta.student.parameters(), strict=True):
        torch.testing.assert_close(t, torch.lerp(t0, s.detach(), 0.1))
    # the mask token learns only when the student's crops were masked
    assert (meta.student.backbone.mask_token.grad is not None) is (prob == 1.0)


def test_without_a_patch_loss_the_student_is_never_masked() -> None:
    changes = {"augment": {"global_size": 64, "local_size": 16}, "masking": {"prob": 1.0}}
    meta = InoMetaArch(load_config(["tiny", "ablations/loss-out-only"], changes), torch.device("cpu"))
    unmasked = InoMetaArch(load_config(["tiny", "ablations/loss-out-only"], {**changes, "masking": {"prob": 0.0}}),
                           torch.device("cpu"))  # fmt: skip
    for step in range(3):
        torch.manual_seed(step)
        record = meta.train_step(*crops(step), step=step, schedule=SCHEDULE)
        torch.manual_seed(step)
        assert record == unmasked.train_step(*crops(step), step=step, schedule=SCHEDULE)  # the same cls loss
        assert record["masked"] is False and meta.student.backbone.mask_token.grad is None


def test_a_frozen_last_layer_keeps_its_weights() -> None:
    meta = tiny(prob=1.0)
    last = [p.detach().clone() for p in meta.student.head.last_layer.parameters()]
    meta.train_step(*crops(1), step=0, schedule=StepSchedule(1e-3, 0.04, 0.9, freeze_last_layer=True))
    assert all(torch.equal(p, q) for p, q in zip(meta.student.head.last_layer.parameters(), last, strict=True))


def test_block_masks_are_per_clip_and_every_step_has_patch_terms() -> None:
    meta = tiny(mode="block", prob=0.0)  # no clip masked: the patch losses still run (a collective on every rank)
    mask = meta.draw_mask(step=0, clips=2)
    assert mask is not None and mask.shape == (2, 16) and not mask.any()
    record = meta.train_step(*crops(2), step=0, schedule=SCHEDULE)
    assert record["masked"] is False and record["mim"] == 0 and record["aff"] == 0


def test_a_non_finite_loss_stops_before_the_weights_change() -> None:
    meta = tiny(prob=1.0)
    with torch.no_grad():
        meta.student.head.mlp[0].weight.fill_(float("nan"))
    teacher_before = [p.detach().clone() for p in meta.teacher.parameters()]
    with pytest.raises(InoError, match="step 7: non-finite loss"):
        meta.train_step(*crops(3), step=7, schedule=SCHEDULE)
    assert all(torch.equal(p, q) for p, q in zip(meta.teacher.parameters(), teacher_before, strict=True))


def test_stage_timings_cover_the_whole_step_when_asked() -> None:
    meta = tiny(prob=1.0)
    meta.train_step(*crops(4), step=0, schedule=SCHEDULE)
    assert meta.timings is None
    meta.timings = {}
    meta.train_step(*crops(5), step=1, schedule=SCHEDULE)
    stages = {"teacher_forward", "student_forward", "losses", "backward", "optimizer_step", "teacher_update"}
    assert set(meta.timings) == stages and all(seconds > 0 for seconds in meta.timings.values())


def test_state_round_trips_into_a_new_step() -> None:
    a = tiny(prob=1.0)
    a.train_step(*crops(6), step=0, schedule=SCHEDULE)
    b = tiny(prob=1.0)
    b.load_state_dict(a.state_dict())
    records = []
    for meta in (a, b):
        torch.manual_seed(0)  # the same drop-path draws
        records.append(meta.train_step(*crops(7), step=1, schedule=SCHEDULE))
    assert records[0] == records[1]


def test_bf16_precision_autocasts_the_cpu_step_and_keeps_float32_weights_and_losses() -> None:
    changes = {"augment": {"global_size": 64, "local_size": 16}, "masking": {"prob": 1.0}}
    metas = {p: InoMetaArch(load_config(["tiny"], {**changes, "optim": {"precision": p}}), torch.device("cpu"))
             for p in ("fp32", "bf16")}  # fmt: skip
    seen: dict[str, set[torch.dtype]] = {p: set() for p in metas}
    for precision, meta in metas.items():
        block = meta.student.backbone.blocks[0].mlp.fc1
        block.register_forward_hook(lambda _m, _i, out, p=precision: seen[p].add(out.dtype))
    records = {p: meta.train_step(*crops(3), step=0, schedule=SCHEDULE) for p, meta in metas.items()}
    assert seen == {"fp32": {torch.float32}, "bf16": {torch.bfloat16}}
    assert all(p.dtype == torch.float32 for p in metas["bf16"].student.parameters())
    assert records["bf16"]["loss"] == pytest.approx(records["fp32"]["loss"], rel=2e-2)  # same step, rounded
    assert records["bf16"]["loss"] != records["fp32"]["loss"]
