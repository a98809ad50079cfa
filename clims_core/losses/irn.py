"""IRNet's class-boundary loss: pair affinities from the boundary map, against affinity labels from IR labels.

With ``a`` the affinity of a pair (``1 - max`` boundary on its path): positive pairs pay ``-log(a)``, negative pairs
``-log(1 - a)``. Background-positive and foreground-positive pairs are averaged separately and weigh half each (there
are far more background pairs), then positives and negatives weigh half each:
``((bg_pos + fg_pos) / 2 + neg) / 2`` (IRNet ``train_irn.py``, without the instance branch's displacement terms).
"""

from __future__ import annotations

import torch

EPS = 1e-5  # IRNet's


def class_boundary_loss(affinity: torch.Tensor, bg_pos: torch.Tensor, fg_pos: torch.Tensor,
                        neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss and its three terms; all inputs (B, D, n), the labels 0/1 masks, sums over the whole batch."""
    affinity = affinity.float()
    pos_term = -torch.log(affinity + EPS)
    neg_term = -torch.log(1 + EPS - affinity)
    bg = (bg_pos * pos_term).sum() / (bg_pos.sum() + EPS)
    fg = (fg_pos * pos_term).sum() / (fg_pos.sum() + EPS)
    negative = (neg * neg_term).sum() / (neg.sum() + EPS)
    loss = (bg / 2 + fg / 2 + negative) / 2
    return loss, {"bg_pos": bg.item(), "fg_pos": fg.item(), "neg": negative.item()}
