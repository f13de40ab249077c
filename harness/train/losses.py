"""Training losses and KD terms, registered by name like metrics, so a plugin adds a
distillation loss without touching the engine:

    from harness import register_loss

    @register_loss("attention_kd", needs=("student_feats", "teacher_feats"))
    def attention_kd(ctx):
        ...return a scalar tensor...

A recipe weights them by name (``losses: {l1: 1.0, attention_kd: 0.5}``). A loss reads
what it needs from the step's context (a dict): ``pred`` and ``target`` (B, 3, T, H, W)
generated and real windows, ``mel`` (B, 1, 80, 16) the audio window of the first frame,
``expert`` (the frozen sync expert), ``disc_on_pred`` (the quality discriminator's
output on ``pred``), ``teacher_pred``, ``student_feats`` /
``teacher_feats`` (matched blocks) and ``adapters`` (learned 1x1 convolutions), and for
the expert's own training ``audio_emb``, ``face_emb`` and ``label``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F

from ..errors import BadInput
from ..registry import Registry, current_origin


@dataclass(frozen=True)
class Loss:
    name: str
    fn: Callable[[dict], torch.Tensor]
    needs: tuple[str, ...]
    description: str = ""


losses: Registry[Loss] = Registry("loss")


def register_loss(name: str, needs: tuple[str, ...] = (), description: str = "",
                  _builtin: bool = False):
    def decorate(fn):
        losses.add(name, Loss(name, fn, tuple(needs), description or (fn.__doc__ or "").strip()),
                   current_origin() if not _builtin else "built-in harness.train.losses",
                   builtin=_builtin)
        return fn
    return decorate


def check_loss_names(recipe, where: str) -> None:
    for name in recipe.losses:
        if name not in losses:
            from ..errors import unknown_name
            raise unknown_name("loss", name, losses.names(),
                               f"{where}: field losses.{name}. Plugins add losses with register_loss.")
    if recipe.best != "loss" and recipe.best not in losses:
        from ..errors import unknown_name
        raise unknown_name("validation value", recipe.best, ["loss"] + losses.names(),
                           f"{where}: field best names the validation value that picks best.pt.")


def bce(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy in fp32 outside autocast (CUDA autocast refuses it)."""
    with torch.autocast(p.device.type, enabled=False):
        return F.binary_cross_entropy(p.float(), y.float())


def cosine_bce(audio_emb: torch.Tensor, face_emb: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Wav2Lip's ``cosine_loss``: BCE of the cosine similarity of the (ReLU'd,
    L2-normalised) embeddings against the in-sync label."""
    d = F.cosine_similarity(audio_emb.float(), face_emb.float())
    return bce(d.unsqueeze(1).clamp(0, 1), label.float().view(-1, 1))


def lower_half_window(frames: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) -> (B, 3T, H/2, W): the lower halves of T frames stacked on
    channels, frame by frame, as Wav2Lip's ``get_sync_loss`` feeds the expert."""
    g = frames[:, :, :, frames.size(3) // 2:]
    return torch.cat([g[:, :, i] for i in range(g.size(2))], dim=1)


@register_loss("sync_bce", needs=("audio_emb", "face_emb", "label"), _builtin=True)
def sync_bce(ctx: dict) -> torch.Tensor:
    """The expert's loss: BCE(cosine(audio, face), in-sync label)."""
    return cosine_bce(ctx["audio_emb"], ctx["face_emb"], ctx["label"])


@register_loss("l1", needs=("pred", "target"), _builtin=True)
def l1(ctx: dict) -> torch.Tensor:
    """Mean absolute error of the generated window against the real one."""
    return F.l1_loss(ctx["pred"].float(), ctx["target"].float())


@register_loss("sync", needs=("pred", "mel", "expert"), _builtin=True)
def sync(ctx: dict) -> torch.Tensor:
    """The frozen expert's BCE on the generated lower halves against 'in sync'."""
    audio_emb, face_emb = ctx["expert"](ctx["mel"], lower_half_window(ctx["pred"]))
    return cosine_bce(audio_emb, face_emb, torch.ones(len(audio_emb), device=audio_emb.device))


@register_loss("disc_perceptual", needs=("disc_on_pred",), _builtin=True)
def disc_perceptual(ctx: dict) -> torch.Tensor:
    """Wav2Lip HQ's perceptual loss: the quality discriminator's BCE on the generated lower
    halves against 'real' (weighted by the recipe's disc.weight)."""
    p = ctx["disc_on_pred"]
    return bce(p, torch.ones_like(p))


@register_loss("output_kd", needs=("pred", "teacher_pred"), _builtin=True)
def output_kd(ctx: dict) -> torch.Tensor:
    """L1 of the student's window against the frozen teacher's."""
    return F.l1_loss(ctx["pred"].float(), ctx["teacher_pred"].float())


@register_loss("feature_kd", needs=("student_feats", "teacher_feats", "adapters"), _builtin=True)
def feature_kd(ctx: dict) -> torch.Tensor:
    """Mean over matched blocks of MSE(1x1 adapter(student block), teacher block)."""
    pairs = list(zip(ctx["adapters"], ctx["student_feats"], ctx["teacher_feats"]))
    if not pairs:
        raise BadInput("feature_kd: no matched blocks")
    return sum(F.mse_loss(a(s.float()), t.float()) for a, s, t in pairs) / len(pairs)


def weighted_total(parts: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    total = None
    for name, w in weights.items():
        if w == 0 or name not in parts:
            continue
        term = w * parts[name]
        total = term if total is None else total + term
    if total is None:
        raise BadInput("every loss weight is zero: nothing to train")
    return total
