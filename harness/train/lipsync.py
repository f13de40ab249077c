"""Lip-sync training tasks: Wav2Lip's expert (SyncNet_color), its generator recipe, and
distillation of a student from a frozen teacher without a discriminator.

- ``ExpertTrainable``: SyncNet_color on lower-half 5-frame windows against mel windows,
  ``sync_bce`` (Wav2Lip's ``cosine_loss``).
- ``GeneratorTrainable``: a generator on masked windows plus a reference window; losses
  ``l1`` and the frozen expert's ``sync``, with Wav2Lip's switch (sync weight 0 until the
  validation sync loss falls below 0.75, then 0.01; every other loss scaled by 1 - w, so
  ``losses: {l1: 1}`` is exactly ``w * sync + (1 - w) * l1``). With a teacher it adds
  ``output_kd`` and ``feature_kd`` (learned 1x1 adapters from student to teacher blocks
  of the same spatial size). With ``disc`` (the HQ recipe) it trains Wav2Lip's visual
  quality discriminator beside the generator and adds its perceptual loss.
The frozen expert runs in training mode (batch statistics), as Wav2Lip's
``wav2lip_train.py`` leaves it: it is never put in eval mode there."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..errors import BadInput
from ..families.lipsync import frame_inputs
from ..families.lipsync.training_data import (ClipStore, ExpertSamples, GeneratorSamples,
                                              split_items)
from .engine import Trainable, discriminator_step
from .recipe import Recipe

ENCODER_BLOCKS = [f"face_encoder_blocks.{i}" for i in range(7)]
DECODER_BLOCKS = [f"face_decoder_blocks.{i}" for i in range(7)]
DEFAULT_KD_BLOCKS = ENCODER_BLOCKS + DECODER_BLOCKS


class _Data:
    def __init__(self, root: str | Path, seed: int, window: int, kind):
        self.root, self.seed, self.window, self.kind = Path(root), seed, window, kind
        self._sets: dict[str, torch.utils.data.Dataset] = {}

    def get(self, split: str):
        if split not in self._sets:
            # validation draws from its own seed, so it never replays training samples
            seed = self.seed if split == "train" else self.seed + 7919
            self._sets[split] = self.kind(ClipStore(split_items(self.root, split)), seed, self.window)
        return self._sets[split]


class ExpertTrainable(Trainable):
    def __init__(self, net: nn.Module, data_root: str | Path, recipe: Recipe):
        super().__init__()
        self.net = net
        self._data = _Data(data_root, recipe.seed, recipe.window, ExpertSamples)

    def forward(self, batch):
        mel, faces, label = batch
        audio_emb, face_emb = self.net(mel, faces)
        return {"audio_emb": audio_emb, "face_emb": face_emb, "label": label}

    def export(self) -> nn.Module:
        return self.net

    def dataset(self, split: str):
        return self._data.get(split)


class _Features:
    """Outputs of named blocks, captured by forward hooks."""

    def __init__(self, model: nn.Module, names: list[str], side: str):
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise BadInput(f"feature_kd: the {side} has no block {', '.join(missing)} "
                           f"(its blocks include {', '.join(n for n in DEFAULT_KD_BLOCKS if n in modules) or 'none of the defaults'})")
        self.names, self.out = names, {}
        self.handles = [modules[n].register_forward_hook(lambda _m, _i, o, n=n: self.out.__setitem__(n, o))
                        for n in names]

    def take(self) -> list[torch.Tensor]:
        return [self.out.pop(n) for n in self.names]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _probe_shapes(model: nn.Module, names: list[str], side: str) -> list[tuple]:
    feats = _Features(model, names, side)
    was = model.training
    model.eval()
    with torch.no_grad():
        model(*frame_inputs(1))
    model.train(was)
    feats.remove()
    return [tuple(t.shape) for t in feats.take()]


def kd_adapters(student: nn.Module, teacher: nn.Module, names: list[str]) -> nn.ModuleList:
    """1x1 convolutions from each student block's channels to the teacher block's, after
    checking that the blocks have the same spatial size (the error names both sides)."""
    s_shapes = _probe_shapes(student, names, "student")
    t_shapes = _probe_shapes(teacher, names, "teacher")
    out = nn.ModuleList()
    for n, s, t in zip(names, s_shapes, t_shapes):
        if s[2:] != t[2:]:
            raise BadInput(f"feature_kd: student block {n} gives {s[1]}x{s[2]}x{s[3]} but teacher "
                           f"block {n} gives {t[1]}x{t[2]}x{t[3]}: matched blocks need the same "
                           "spatial size (choose kd_blocks that pair one to one)")
        out.append(nn.Conv2d(s[1], t[1], 1, bias=False))
    return out


class GeneratorTrainable(Trainable):
    def __init__(self, net: nn.Module, data_root: str | Path, recipe: Recipe,
                 expert: Optional[nn.Module] = None, teacher: Optional[nn.Module] = None,
                 disc: Optional[nn.Module] = None):
        super().__init__()
        self.net = net
        self.disc, self.disc_weight, self.disc_opt = None, 0.0, None
        if recipe.disc is not None:
            if disc is None:
                raise BadInput(f"recipe {recipe.name}: disc is set but no discriminator was built")
            self.disc, self.disc_weight = disc, recipe.disc.weight
            self.disc_opt = torch.optim.Adam(disc.parameters(), lr=recipe.disc.lr,
                                             betas=tuple(recipe.disc.betas))
        self._data = _Data(data_root, recipe.seed, recipe.window, GeneratorSamples)
        self._frozen = {}
        if expert is not None:
            for p in expert.parameters():
                p.requires_grad_(False)
            self._frozen["expert"] = expert.train()
        self.sync = recipe.sync
        self.sync_weight = recipe.sync.before if recipe.sync else None
        self.sync_switched_at: Optional[int] = None
        if ("sync" in recipe.losses or recipe.sync) and expert is None:
            raise BadInput(f"recipe {recipe.name}: the sync loss needs a trained expert (expert: ...)")
        if any(k in recipe.losses for k in ("output_kd", "feature_kd")) and teacher is None:
            raise BadInput(f"recipe {recipe.name}: KD losses need a teacher (teacher: ...)")
        self.adapters = None
        if teacher is not None:
            for p in teacher.parameters():
                p.requires_grad_(False)
            self._frozen["teacher"] = teacher.eval()
            if recipe.losses.get("feature_kd", 0) > 0:
                names = recipe.kd_blocks or DEFAULT_KD_BLOCKS
                self.adapters = kd_adapters(net, teacher, names)
                self._s_feats = _Features(net, names, "student")
                self._t_feats = _Features(teacher, names, "teacher")

    def _apply(self, fn, *args, **kwargs):   # .to(device) moves the frozen models too
        for m in self._frozen.values():
            m._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def forward(self, batch):
        x, mels = batch["x"], batch["indiv_mels"]
        pred = self.net(mels, x)
        ctx = {"pred": pred, "target": batch["y"], "mel": batch["mel"],
               "expert": self._frozen.get("expert")}
        if self.disc is not None:
            ctx["disc_on_pred"] = self.disc(pred)
        teacher = self._frozen.get("teacher")
        if teacher is not None:
            with torch.no_grad():
                ctx["teacher_pred"] = teacher(mels, x)
            if self.adapters is not None:
                ctx["student_feats"] = self._s_feats.take()
                ctx["teacher_feats"] = self._t_feats.take()
                ctx["adapters"] = self.adapters
        return ctx

    def loss_weights(self, recipe: Recipe) -> dict[str, float]:
        """The sync and discriminator weights are taken out of the others' share: each other
        loss is scaled by 1 - sync - disc (Wav2Lip HQ: w*sync + 0.07*disc + (1-w-0.07)*L1)."""
        if self.sync is None and self.disc is None:
            return dict(recipe.losses)
        w = self.sync_weight if self.sync is not None else 0.0
        out = {k: (1 - w - self.disc_weight) * v for k, v in recipe.losses.items()}
        if self.sync is not None:
            out["sync"] = w
        if self.disc is not None:
            out["disc_perceptual"] = self.disc_weight
        return out

    def trained_parameters(self) -> list[nn.Parameter]:
        own = {id(p) for p in self.disc.parameters()} if self.disc is not None else set()
        return [p for p in self.parameters() if p.requires_grad and id(p) not in own]

    def after_step(self, ctx: dict, autocast) -> dict[str, float]:
        """Wav2Lip HQ's discriminator update: BCE on real windows (label 1) and on the
        generated ones, detached (label 0), with its own Adam."""
        if self.disc is None:
            return {}
        return discriminator_step(self.disc, self.disc_opt, ctx["target"], ctx["pred"], autocast)

    def after_eval(self, values: dict[str, float], step: int) -> Optional[str]:
        if self.sync is None or self.sync_switched_at is not None or "sync" not in values:
            return None
        if values["sync"] < self.sync.below:
            self.sync_weight, self.sync_switched_at = self.sync.after, step
            return (f"step {step}: validation sync loss {values['sync']:.3f} < {self.sync.below}: "
                    f"sync weight {self.sync.before} -> {self.sync.after}")
        return None

    def extra_state(self) -> dict:
        out = {"sync_weight": self.sync_weight, "sync_switched_at": self.sync_switched_at}
        if self.disc_opt is not None:
            out["disc_optimiser"] = self.disc_opt.state_dict()
        return out

    def load_extra_state(self, state: dict) -> None:
        self.sync_weight = state.get("sync_weight", self.sync_weight)
        self.sync_switched_at = state.get("sync_switched_at")
        if self.disc_opt is not None and "disc_optimiser" in state:
            self.disc_opt.load_state_dict(state["disc_optimiser"])

    def export(self) -> nn.Module:
        return self.net

    def dataset(self, split: str):
        return self._data.get(split)
