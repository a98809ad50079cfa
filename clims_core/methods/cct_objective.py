"""One CCT training step: supervised loss on the pixel-labeled batch, consistency (and, with pseudo masks, the
weak-label loss) of the auxiliary decoders on the image-level batch; gradients accumulated, the optimizer step left to
the caller.

CCT's loss (Ouali et al., Eq. 3-5; its weakly-labelled mode): ``L = L_s + w_u(t) * mean_k MSE(softmax(g_k(z~)),
softmax(g(z))) + 0.4 * w_u(t) / w_u * mean_k CE(g_k(z~), pseudo)``, with ``g`` the main decoder (its prediction a
detached target) and ``g_k`` the auxiliary decoders on perturbed features ``z~``.

Memory: the supervised loss is backpropagated before the image-level batch goes through the encoder, and the
auxiliary decoders, which produce full-resolution maps (30 of them on VOC: 30 x 10 x 21 x 320 x 320 floats plus what
autograd keeps), are backpropagated one at a time into a detached copy of the encoder output; the encoder then gets
their summed gradient in one backward. Gradients are linear, so they are exactly those of the summed loss (BatchNorm
sees the same two batches in the same order), while the peak holds one batch's encoder graph and one decoder's
instead of two and thirty.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from clims_core.checks import require_one_of
from clims_core.io.masks import IGNORE_INDEX
from clims_core.losses.cct import (abce_threshold, bootstrapped_ce, rampup_weight, softmax_mse, supervised_ce,
                                   weak_ce)
from clims_core.models.cct import CCT

SUPERVISED_LOSSES = ("ce", "abce")


@dataclass(frozen=True)
class CctLossSettings:
    unsupervised_weight: float = 30.0
    rampup: float = 0.1  # share of the training steps over which the unsupervised weight ramps up (sigmoid)
    weak_weight: float = 0.4
    supervised_loss: str = "ce"  # "ce" or "abce" (annealed bootstrapped CE)
    temperature: float = 1.0  # softmax temperature of the supervised CE

    def __post_init__(self) -> None:
        require_one_of("supervised_loss", self.supervised_loss, SUPERVISED_LOSSES)


def cct_step(model: CCT, images_l: torch.Tensor, target_l: torch.Tensor, images_u: torch.Tensor | None,
             pseudo_u: torch.Tensor | None, step: int, total: int, settings: CctLossSettings) -> dict[str, float]:
    """Forward and backward of one step (gradients accumulate in ``model``); returns the loss parts, weighted."""
    logits_l = model(images_l)
    if settings.supervised_loss == "abce":
        threshold = abce_threshold(step, total, logits_l.shape[1])
        loss_sup = bootstrapped_ce(logits_l, target_l, threshold)
    else:
        loss_sup = supervised_ce(logits_l, target_l, settings.temperature)
    parts = {"sup": loss_sup.item()}
    loss_sup.backward()
    del logits_l, loss_sup
    weight_u = rampup_weight(step, total, settings.unsupervised_weight, settings.rampup)
    if images_u is None or not len(model.aux_decoders) or (weight_u == 0 and pseudo_u is None):
        return {**parts, "loss": parts["sup"]}
    features = model.features(images_u)
    size = tuple(images_u.shape[-2:])
    z = features.detach().requires_grad_(True)
    with torch.no_grad():
        main = model.to_size(model.main_decoder(z), size)
        target = F.softmax(main.float(), dim=1)
    guidance = model.guidance(z, main)
    # the weak-label loss follows the consistency ramp: 0.4 x (w_u(t) / w_u)
    weight_w = settings.weak_weight * rampup_weight(step, total, 1.0, settings.rampup)
    n = len(model.aux_decoders)
    unsup = weak = 0.0
    for decoder in model.aux_decoders:
        out = model.to_size(decoder(z, guidance), size).float()
        loss_u = weight_u * softmax_mse(out, target) / n
        unsup += loss_u.item()
        if pseudo_u is not None:
            loss_w = weight_w * weak_ce(out, pseudo_u) / n
            weak += loss_w.item()
            loss_u = loss_u + loss_w
        loss_u.backward()
    features.backward(z.grad)
    parts.update(unsup=unsup, weight_u=weight_u)
    if pseudo_u is not None:
        parts["weak"] = weak
        parts["pseudo_ignored"] = float((pseudo_u == IGNORE_INDEX).float().mean())
    parts["loss"] = parts["sup"] + unsup + weak
    return parts
