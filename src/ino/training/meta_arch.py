"""One INO training step, owned by one object: student and EMA teacher, the shared head, losses, centres, AdamW.

The order (docs/method.md §5.6): draw the step's mask (identical on every rank: seeded by (seed, step)); teacher
forward on the global crops; student forward on the masked global crops and the local crops; L = w_out L_out +
w_mim L_mim + w_aff L_aff; backward; set lr and weight decay; per-parameter gradient clip; drop the head's
last-layer gradients while it is frozen; AdamW step; teacher EMA. The training loop, the throughput benchmark and
the tests all call :meth:`InoMetaArch.train_step` (or its parts), so there is one copy of the step.

Each stage runs under ``torch.profiler.record_function("ino/<stage>")``; set ``timings`` to a dict to also
accumulate each stage's wall-clock seconds (with a device sync around it), which ``benchmarks/bench_train.py`` does.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.profiler import record_function

from ino.configs.schema import TrainConfig
from ino.data.masking import step_mask
from ino.errors import InoError
from ino.models.network import NetworkOutput, build_network
from ino.models.teacher import ema_update, make_teacher
from ino.training.losses import InoLoss, teacher_entropy
from ino.training.optim import autocast_dtype, clip_gradients_per_parameter, param_groups
from ino.utils import distributed

#: the loss terms of a step's record, in order (``mim`` and ``aff`` are 0 in an unmasked step)
LOSS_TERMS = ("loss", "out", "mim", "aff")


@dataclass(frozen=True)
class StepSchedule:
    """The per-iteration schedules' values at one step, and whether the head's last layer is still frozen."""

    lr: float
    weight_decay: float
    teacher_momentum: float
    freeze_last_layer: bool = False


class InoMetaArch:
    """Student (DDP-wrapped when distributed), EMA teacher, :class:`~ino.training.losses.InoLoss` and the optimiser.

    Built from a validated :class:`~ino.configs.schema.TrainConfig`; the student's weights are drawn after
    ``torch.manual_seed(config.run.seed)``, so every rank (and a random-init baseline) starts from the same ones.
    """

    def __init__(self, config: TrainConfig, device: torch.device, *, rank: int = 0, distributed: bool = False):
        self.config, self.device, self.rank = config, device, rank
        torch.manual_seed(config.run.seed)
        self.student = build_network(config.model).to(device)
        self.teacher = make_teacher(self.student)
        self.loss = InoLoss(config.model.out_dim, config.loss).to(device)
        self.optimizer = torch.optim.AdamW(param_groups(self.student), lr=0.0)
        self.autocast_dtype = autocast_dtype(config.optim.precision, device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.autocast_dtype == torch.float16)
        self._forward = (
            DistributedDataParallel(self.student, find_unused_parameters=True) if distributed else self.student
        )
        self._last_layer = list(self.student.head.last_layer_parameters())
        self.grid = config.augment.global_size // config.model.patch_size
        self.timings: dict[str, float] | None = None

    @contextlib.contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        with record_function(f"ino/{name}"):
            if self.timings is None:
                yield
                return
            distributed.synchronize(self.device)
            started = time.perf_counter()
            yield
            distributed.synchronize(self.device)
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started

    def draw_mask(self, step: int, clips: int) -> torch.Tensor | None:
        """This step's mask (docs/method.md §4): (N,) shared (None in an unmasked step) or (clips, N) per clip.

        None whenever no patch loss is on: masking only serves them, and the authors masked the student only then.
        """
        if not (self.config.loss.w_mim or self.config.loss.w_aff):
            return None
        return step_mask(self.config.masking, self.config.run.seed, step, self.rank, clips, self.grid)

    def forward_backward(
        self, global_crops: torch.Tensor, local_crops: torch.Tensor, mask: torch.Tensor | None
    ) -> dict[str, float]:
        """Loss terms of one batch, averaged over ranks, and their gradients in the student.

        ``global_crops`` (B, T, 3, G, G) and ``local_crops`` (B, T, M, 3, S, S) as the loader gives them; ``mask``
        from :meth:`draw_mask`. Returns ``loss``, ``out``, ``mim``, ``aff`` and ``teacher_entropy``; a non-finite
        value stops the run before the weights change.
        """
        clips, frames = global_crops.shape[:2]
        n_local = local_crops.shape[2]
        # (B, T, ...) -> (T * B, ...) and (B, T, M, ...) -> (T * M * B, ...): the (t, crop, b) order of the losses
        globals_ = global_crops.transpose(0, 1).flatten(0, 1).to(self.device, non_blocking=True)
        locals_ = local_crops.permute(1, 2, 0, 3, 4, 5).flatten(0, 2).to(self.device, non_blocking=True)
        student_mask = patch_index = loss_mask = None
        if mask is not None:
            mask = mask.to(self.device)
            if mask.dim() == 1:  # shared: only the K masked positions go through the head
                student_mask = mask.expand(frames * clips, -1)
                patch_index = mask.nonzero().squeeze(1)
            else:  # per clip: every position goes through the head, the losses pick each clip's own
                student_mask = mask.unsqueeze(0).expand(frames, -1, -1).flatten(0, 1)
                patch_index = torch.arange(mask.shape[1], device=self.device)
                loss_mask = mask
        dtype = self.autocast_dtype
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            with self._stage("teacher_forward"), torch.no_grad():
                teacher = self.teacher(globals_, None, None, patch_index)
            with self._stage("student_forward"):
                student = self._forward(globals_, locals_, student_mask, patch_index)
        with self._stage("losses"):
            loss, terms = self._losses(teacher, student, frames, clips, n_local, loss_mask, mask is not None)
        with self._stage("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
        return terms

    def _losses(
        self,
        teacher: NetworkOutput,
        student: NetworkOutput,
        frames: int,
        clips: int,
        n_local: int,
        loss_mask: torch.Tensor | None,
        masked: bool,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        width = teacher.global_cls.shape[-1]
        patches = (None, None)
        if masked:
            assert teacher.patches is not None and student.patches is not None
            patches = (teacher.patches.view(frames, clips, -1, width), student.patches.view(frames, clips, -1, width))
        assert student.local_cls is not None
        loss, parts = self.loss(
            teacher.global_cls.view(frames, clips, width),
            student.global_cls.view(frames, clips, width),
            student.local_cls.view(frames, n_local, clips, width),
            *patches,
            loss_mask,
        )
        zero = torch.zeros((), device=self.device)
        values = [loss.detach(), *(parts.get(name, zero) for name in LOSS_TERMS[1:])]
        entropy = teacher_entropy(teacher.global_cls.float(), self.loss.center_cls.center, self.config.loss.tau_t)
        reduced = distributed.mean_over_ranks(torch.stack([*values, entropy]).float()).tolist()
        terms = dict(zip([*LOSS_TERMS, "teacher_entropy"], reduced, strict=True))
        if not all(math.isfinite(value) for value in reduced):
            raise InoError(f"non-finite loss ({terms}); training stopped before the weights changed")
        return loss, terms

    def optimizer_step(self, schedule: StepSchedule) -> None:
        """Set lr and weight decay, unscale, clip each gradient, drop a frozen last layer's, step AdamW."""
        with self._stage("optimizer_step"):
            for index, group in enumerate(self.optimizer.param_groups):
                group["lr"] = schedule.lr
                if index == 0:
                    group["weight_decay"] = schedule.weight_decay
            self.scaler.unscale_(self.optimizer)
            if self.config.optim.clip_grad > 0:
                clip_gradients_per_parameter(self.student.parameters(), self.config.optim.clip_grad)
            if schedule.freeze_last_layer:
                for parameter in self._last_layer:
                    parameter.grad = None
            self.scaler.step(self.optimizer)
            self.scaler.update()

    def update_teacher(self, momentum: float) -> None:
        """The EMA: every teacher parameter moves to ``momentum * teacher + (1 - momentum) * student``."""
        with self._stage("teacher_update"):
            ema_update(self.teacher, self.student, momentum)

    def train_step(
        self, global_crops: torch.Tensor, local_crops: torch.Tensor, step: int, schedule: StepSchedule
    ) -> dict[str, Any]:
        """The whole step; returns its record: the loss terms, teacher entropy, whether it was masked, lr, wd, EMA."""
        mask = self.draw_mask(step, global_crops.shape[0])
        try:
            terms = self.forward_backward(global_crops, local_crops, mask)
        except InoError as error:
            raise InoError(f"step {step}: {error}") from None
        self.optimizer_step(schedule)
        self.update_teacher(schedule.teacher_momentum)
        return {
            **terms,
            "masked": mask is not None and bool(mask.any()),
            "lr": schedule.lr,
            "wd": schedule.weight_decay,
            "momentum": schedule.teacher_momentum,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs of the step: both networks, the optimiser, the scaler and the centres."""
        return {
            "student": self.student.state_dict(),
            "teacher": self.teacher.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "loss": self.loss.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.student.load_state_dict(state["student"])
        self.teacher.load_state_dict(state["teacher"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.loss.load_state_dict(state["loss"])
