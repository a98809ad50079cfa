"""SGD over parameter groups at their own learning rates (trunk and head), as the schedules expect them.

Each group records its ``initial_lr``: the schedules in :mod:`clims_core.training.schedules` scale it by a multiplier
of the step, so a resumed run sets the same rates as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def grouped_sgd(groups: Iterable[tuple[Iterable[torch.nn.Parameter], float]], momentum: float,
                weight_decay: float) -> torch.optim.SGD:
    """SGD with momentum and weight decay by keyword (IRNet's PolyOptimizer passed weight decay as momentum by
    position; not copied), one group per ``(parameters, lr)``."""
    param_groups = [{"params": list(params), "lr": lr, "initial_lr": lr} for params, lr in groups]
    return torch.optim.SGD(param_groups, lr=param_groups[0]["lr"], momentum=momentum, weight_decay=weight_decay)
