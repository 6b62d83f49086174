"""The EMA teacher (docs/method.md §3.3, §5.6 step 6): a gradient-free copy of the student that trails its weights.

INO's teacher is an identical backbone + head without drop path; it starts from the student's weights and is
updated after every optimiser step with theta_t <- m * theta_t + (1 - m) * theta_s over *all* parameters zipped
in order, frozen ones (the head's weight-norm gain g) and the mask token included.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_teacher(student: nn.Module) -> nn.Module:
    """Deep copy of ``student`` (pass the bare module, not a DDP wrapper) with gradients off, in eval mode.

    Eval mode is what makes the copy a teacher: the student is built with drop path 0.1 and the teacher must
    have none, and timm's ``DropPath`` (like dropout) is the identity in eval mode. There are no BatchNorm
    layers, so eval mode changes nothing else. Keep the teacher in eval mode (do not call ``.train()`` on it).
    """
    teacher = copy.deepcopy(student)
    teacher.requires_grad_(False)
    return teacher.eval()


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """In place: every teacher parameter becomes ``momentum * teacher + (1 - momentum) * student``.

    Written as ``lerp(teacher, student, 1 - momentum)`` with one fused ``_foreach`` call instead of a Python
    loop; lerp leaves a parameter exactly unchanged where teacher and student are equal, so the frozen gain
    g = 1 of the head's last layer stays exactly 1 (``m * 1 + (1 - m) * 1`` need not round to 1).
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"teacher EMA momentum must lie in [0, 1], got {momentum}")
    teacher_params = list(teacher.parameters())
    student_params = [p.detach() for p in student.parameters()]
    if len(teacher_params) != len(student_params) or any(
        t.shape != s.shape for t, s in zip(teacher_params, student_params, strict=True)
    ):
        raise ValueError(
            "teacher and student parameters do not correspond one to one; build the teacher with make_teacher"
        )
    torch._foreach_lerp_(teacher_params, student_params, 1.0 - momentum)
