"""IRNet's class-boundary loss: pair affinities from the boundary map, against affinity labels from IR labels.

With ``a`` the affinity of a pair (``1 - max`` boundary on its path): positive pairs pay ``-log(a)``, negative pairs
``-log(1 - a)``. Background-positive and foreground-positive pairs are averaged separately and weigh half each (there
are far more background pairs), then positives and negatives weigh half each:
``((bg_pos + fg_pos) / 2 + neg) / 2`` (IRNet ``train_irn.py``, without the instance branch's displacement terms).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

EPS = 1e-5  # IRNet's


def class_boundary_loss(affinity: torch.Tensor, bg_pos: torch.Tensor, fg_pos: torch.Tensor, neg: torch.Tensor,
                        global_sum: Callable[[torch.Tensor], torch.Tensor] | None = None,
                        processes: int = 1) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss and its three terms; all inputs (B, D, n), the labels 0/1 masks, sums over the whole batch.

    Under DDP each process holds part of the batch: ``global_sum`` totals the pair counts over processes and the
    terms are scaled by ``processes``, so DDP's gradient average is the gradient of the global batch's loss (each
    process dividing by its own counts would weigh pairs differently than one process does)."""
    affinity = affinity.float()
    pos_term = -torch.log(affinity + EPS)
    neg_term = -torch.log(1 + EPS - affinity)
    counts = torch.stack([bg_pos.sum(), fg_pos.sum(), neg.sum()]).float()
    if global_sum is not None:
        counts = global_sum(counts)
    bg = processes * (bg_pos * pos_term).sum() / (counts[0] + EPS)
    fg = processes * (fg_pos * pos_term).sum() / (counts[1] + EPS)
    negative = processes * (neg * neg_term).sum() / (counts[2] + EPS)
    loss = (bg / 2 + fg / 2 + negative) / 2
    return loss, {"bg_pos": bg.item(), "fg_pos": fg.item(), "neg": negative.item()}
