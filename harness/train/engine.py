"""The training engine: steps, evaluation, atomic checkpoints, resume after a kill,
a loss log and curve, bf16 autocast, worker processes and DDP under ``torchrun``.

What it trains is a ``Trainable``: an ``nn.Module`` whose ``forward(batch)`` returns the
context the recipe's losses read (``harness.train.losses``), with ``export()`` (the model
whose weights are the result), ``dataset(split)`` and, optionally, ``after_eval`` and
``extra_state`` / ``load_extra_state`` for schedule state (the sync-loss switch) and
``trained_parameters`` / ``after_step`` for a part with its own optimiser (a discriminator).

Sample ``i`` of step ``s`` is dataset index ``s * batch_size + i`` (each DDP process
takes its slice of that range); datasets draw each index with its own seed, so a resumed
run (and a distributed one) sees exactly the data of an uninterrupted single run.
A checkpoint holds the trainable state, the optimiser and scheduler, the step, the RNG
state, the best value and the schedule state: resuming from it reproduces the losses of
an uninterrupted run (on one device and one thread count). Checkpoints are tensors and
plain containers, loaded with ``weights_only=True``."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..cache import atomic_path, write_atomic
from ..errors import BadInput
from .losses import losses as loss_registry, weighted_total
from .recipe import Recipe


class TrainingFailed(BadInput):
    """A run that cannot go on (a NaN loss): the message names the step, the loss and the
    last good checkpoint, which is kept."""


class Trainable(nn.Module):
    def export(self) -> nn.Module:
        raise NotImplementedError

    def dataset(self, split: str) -> torch.utils.data.Dataset:
        raise NotImplementedError

    def loss_weights(self, recipe: Recipe) -> dict[str, float]:
        return dict(recipe.losses)

    def trained_parameters(self) -> list[nn.Parameter]:
        """What the recipe's optimiser updates (a part with its own optimiser, such as a
        discriminator, is left out and updated in ``after_step``)."""
        return [p for p in self.parameters() if p.requires_grad]

    def after_step(self, ctx: dict, autocast) -> dict[str, float]:
        """Called after each optimiser step with the step's context (a discriminator's own
        update); returns values to log."""
        return {}

    def after_eval(self, values: dict[str, float], step: int) -> Optional[str]:
        """Called with the validation losses; may change schedule state and return a note."""
        return None

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass


@dataclass
class Outcome:
    out_dir: Path
    final: Path                   # the exported model's state dict
    steps: int
    last: dict = field(default_factory=dict)      # last logged training losses
    best: Optional[float] = None
    best_step: Optional[int] = None
    wall_s: float = 0.0
    resumed_from: Optional[int] = None
    notes: list = field(default_factory=list)


# ------------------------------------------------------------------ distributed

def world() -> tuple[int, int]:
    """(rank, world size): torchrun's environment, else (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _init_distributed(device: torch.device) -> bool:
    rank, size = world()
    if size == 1:
        return False
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


class _StepSampler(torch.utils.data.Sampler):
    """Indices of steps ``start..steps-1``, this process's slice of each step."""

    def __init__(self, start: int, steps: int, batch: int, rank: int, size: int):
        self.start, self.steps, self.batch, self.rank, self.size = start, steps, batch, rank, size
        self.local = batch // size

    def __iter__(self):
        for s in range(self.start, self.steps):
            first = s * self.batch + self.rank * self.local
            yield from range(first, first + self.local)

    def __len__(self) -> int:
        return (self.steps - self.start) * self.local


# ------------------------------------------------------------------ checkpoints

def checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("step-*.pt"))


def _save(path: Path, state: dict) -> None:
    """Atomically; through a buffer, so the bytes do not depend on a temporary file name."""
    import io
    buf = io.BytesIO()
    torch.save(state, buf)
    write_atomic(path, buf.getvalue())


def _load(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:   # noqa: BLE001 - any unreadable file is reported the same way
        raise BadInput(f"training checkpoint {path} cannot be read ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it to resume "
                       "from the one before") from None


def _check_identity(path: Path, state: dict, recipe_sha256: str, data_sha256: Optional[str]) -> None:
    """A checkpoint resumes only the training that wrote it: same recipe, same data."""
    for what, theirs, ours in (("recipe (or its settings)", state.get("recipe_sha256"), recipe_sha256),
                               ("training data", state.get("data_sha256"), data_sha256)):
        if theirs != ours:
            raise BadInput(f"{path}: this checkpoint was written for another {what} (sha256 "
                           f"{str(theirs)[:16]}...), not this run's (sha256 {str(ours)[:16]}...); "
                           "use another --out folder or delete it to start over")


def _check_checkpoint(path: Path, state: dict, recipe: Recipe, trainable: nn.Module) -> None:
    """A training checkpoint's fields, checked before any is used: a bad one is refused
    (exit 2) naming the checkpoint and the field, and left as it is."""
    from ..checkpoints import check_fit

    def bad(field: str, why: str) -> BadInput:
        return BadInput(f"training checkpoint {path}: field {field} {why}; delete it to resume from the "
                        "one before, or give another --out folder")
    if not isinstance(state, dict):
        raise bad("(top level)", "is not a mapping")
    for key in ("trainable", "optimiser", "scheduler", "rng", "step"):
        if key not in state:
            raise bad(key, "is missing")
    step = state["step"]
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= recipe.steps:
        raise bad("step", f"must be a whole number in [0, {recipe.steps}] (the recipe's steps), got {step!r}")
    for key in ("optimiser", "scheduler"):
        if not isinstance(state[key], dict):
            raise bad(key, "is not a mapping")
    rng, ours = state["rng"], torch.get_rng_state()
    if not isinstance(rng, torch.Tensor) or rng.dtype != ours.dtype or rng.shape != ours.shape:
        raise bad("rng", f"is not a CPU generator state (a {ours.dtype} tensor of shape {tuple(ours.shape)})")
    weights = state["trainable"]
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise bad("trainable", "is not a state dict (names to tensors)")
    check_fit(weights, trainable.state_dict(), f"training checkpoint {path}: field trainable does not fit the model")
    for key in ("best", "best_step"):
        v = state.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise bad(key, f"must be a finite number or empty, got {v!r}")


def _schedule(opt: torch.optim.Optimizer, recipe: Recipe):
    o = recipe.optimiser

    def factor(step: int) -> float:
        if o.warmup_steps and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "cosine":
            span = max(1, recipe.steps - o.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - o.warmup_steps) / span)))
        return 1.0
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _optimiser(params, recipe: Recipe) -> torch.optim.Optimizer:
    o = recipe.optimiser
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, weight_decay=o.weight_decay)
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


def _move(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _move(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_move(v, device) for v in batch)
    return batch


def compute_losses(ctx: dict, weights: dict[str, float], every: bool = False) -> dict[str, torch.Tensor]:
    """Each weighted loss of the context (every registered one it has inputs for with
    ``every``, as evaluation reports them)."""
    parts = {}
    names = list(weights) if not every else [n for n in loss_registry.names()
                                             if n in weights or all(k in ctx for k in loss_registry.get(n).needs)]
    for name in names:
        if not every and weights.get(name, 0) == 0:
            continue
        loss = loss_registry.get(name)
        missing = [k for k in loss.needs if ctx.get(k) is None]
        if missing:
            if every and name not in weights:
                continue
            raise BadInput(f"loss '{name}' needs {', '.join(missing)}, which this task does not "
                           "provide (a teacher for KD losses, an expert for the sync loss)")
        parts[name] = loss.fn(ctx)
    return parts


def discriminator_step(disc: nn.Module, opt: torch.optim.Optimizer, real: torch.Tensor,
                       fake: torch.Tensor, autocast) -> dict[str, float]:
    """One update of a discriminator (Wav2Lip HQ's): BCE(disc(real), 1) and
    BCE(disc(fake.detach()), 0), gradients averaged across DDP processes (this runs
    outside the DDP forward), then its own optimiser's step."""
    from .losses import bce
    opt.zero_grad(set_to_none=True)
    with autocast:
        p_real = disc(real)
    real_loss = bce(p_real, torch.ones_like(p_real))
    real_loss.backward()
    with autocast:
        p_fake = disc(fake.detach())
    fake_loss = bce(p_fake, torch.zeros_like(p_fake))
    fake_loss.backward()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        size = torch.distributed.get_world_size()
        for p in disc.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= size
    opt.step()
    return {"disc_real": float(real_loss.detach()), "disc_fake": float(fake_loss.detach())}


def _stopped(label: str, step: int, what: str, value: float, ckdir: Path) -> TrainingFailed:
    good = checkpoints(ckdir)
    return TrainingFailed(f"{label}: step {step}: {what} is {value}; training stopped. Last good checkpoint: "
                          f"{good[-1] if good else 'none (no checkpoint written yet)'}")


# ------------------------------------------------------------------ the loop

def train(trainable: Trainable, recipe: Recipe, out_dir: str | Path, device: str = "cpu",
          progress: bool = True, label: str = "", data_sha256: Optional[str] = None) -> Outcome:
    """Train (or resume training) ``trainable`` by ``recipe``, writing under ``out_dir``:
    ``checkpoints/step-*.pt`` (the last ``keep_last``), ``best.pt``, ``final.pt`` (the
    exported model's state dict), ``log.jsonl`` and ``curve.png``. ``data_sha256`` (the
    content digest of the training data) is kept in every checkpoint; a resume onto other
    data, like one under another recipe, is refused."""
    from tqdm import tqdm
    out = Path(out_dir)
    dev = torch.device(device)
    distributed = _init_distributed(dev)
    rank, size = world()
    if recipe.batch_size % size:
        raise BadInput(f"batch_size {recipe.batch_size} does not split over {size} processes")
    lead = rank == 0
    torch.manual_seed(recipe.seed)
    trainable.to(dev).train()
    if recipe.memory_format == "channels_last":
        trainable.to(memory_format=torch.channels_last)
    model: nn.Module = trainable
    if distributed:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(trainable, find_unused_parameters=False)
    params = trainable.trained_parameters()
    opt = _optimiser(params, recipe)
    sched = _schedule(opt, recipe)
    ckdir = out / "checkpoints"
    start, best, best_step, resumed = 0, None, None, None
    found = checkpoints(ckdir)
    if found:
        state = _load(found[-1])
        _check_identity(found[-1], state, recipe.digest(), data_sha256)
        _check_checkpoint(found[-1], state, recipe, trainable)
        try:
            opt.load_state_dict(state["optimiser"])
            sched.load_state_dict(state["scheduler"])
            trainable.load_extra_state(state.get("extra", {}))
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError) as exc:
            raise BadInput(f"training checkpoint {found[-1]}: its optimiser, scheduler or schedule state does "
                           f"not fit this training ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                           "delete it to resume from the one before") from None
        trainable.load_state_dict(state["trainable"])
        torch.set_rng_state(state["rng"])
        start, best, best_step, resumed = state["step"], state.get("best"), state.get("best_step"), state["step"]
    log_path = out / "log.jsonl"
    if lead:
        out.mkdir(parents=True, exist_ok=True)
        _truncate_log(log_path, start)
    weights = trainable.loss_weights(recipe)
    data = trainable.dataset(recipe.split)
    loader = torch.utils.data.DataLoader(
        data, batch_size=recipe.batch_size // size, num_workers=recipe.workers,
        sampler=_StepSampler(start, recipe.steps, recipe.batch_size, rank, size),
        persistent_workers=False, pin_memory=dev.type == "cuda")
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=recipe.precision == "bf16")
    notes: list[str] = []
    last: dict = {}
    t0 = time.perf_counter()
    bar = tqdm(total=recipe.steps, initial=start, desc=f"train {label or recipe.name}", unit="step",
               disable=None if (progress and lead) else True, leave=False, dynamic_ncols=True)
    step = start
    for batch in loader:
        batch = _move(batch, dev)
        with autocast:
            ctx = model(batch)
            parts = compute_losses(ctx, weights)
            total = weighted_total(parts, weights)
        bad = [n for n, v in parts.items() if not torch.isfinite(v.detach()).all()]
        if bad or not torch.isfinite(total.detach()):
            raise _stopped(label or recipe.name, step + 1, f"loss {', '.join(bad) or 'total'}",
                           float((parts[bad[0]] if bad else total).detach()), ckdir)
        opt.zero_grad(set_to_none=True)
        total.backward()
        if recipe.optimiser.grad_clip:
            nn.utils.clip_grad_norm_(params, recipe.optimiser.grad_clip)
        opt.step()
        sched.step()
        aux = trainable.after_step(ctx, autocast)
        bad = [n for n, v in aux.items() if not math.isfinite(v)]
        if bad:
            raise _stopped(label or recipe.name, step + 1, bad[0], aux[bad[0]], ckdir)
        step += 1
        last = {n: float(v.detach()) for n, v in parts.items()} | aux
        last["loss"] = float(total.detach())
        line = {"step": step, **last, "lr": sched.get_last_lr()[0],
                **{f"w_{n}": w for n, w in weights.items()}}
        if step % recipe.eval_every == 0 or step == recipe.steps:
            values = evaluate(trainable, recipe, weights, dev, autocast)
            note = trainable.after_eval(values, step)
            if note:
                notes.append(note)
                weights = trainable.loss_weights(recipe)
            line.update({f"val_{k}": v for k, v in values.items()})
            if recipe.best not in values:
                raise BadInput(f"{label or recipe.name}: recipe field best names {recipe.best!r}, which this "
                               f"training does not log; it logs {', '.join(sorted(values))}")
            key = recipe.best
            if best is None or values[key] < best:
                best, best_step = values[key], step
                if lead:
                    _save(out / "best.pt", {"model": trainable.export().state_dict(), "step": step,
                                            recipe.best: best})
        if lead:
            with open(log_path, "a") as f:
                f.write(json.dumps(line) + "\n")
        if step % recipe.checkpoint_every == 0 or step == recipe.steps:
            if lead:
                _save(ckdir / f"step-{step:08d}.pt", {
                    "trainable": trainable.state_dict(), "optimiser": opt.state_dict(),
                    "scheduler": sched.state_dict(), "extra": trainable.extra_state(),
                    "rng": torch.get_rng_state(), "step": step, "best": best, "best_step": best_step,
                    "recipe_sha256": recipe.digest(), "data_sha256": data_sha256})
                for old in checkpoints(ckdir)[:-recipe.keep_last]:
                    old.unlink()
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in last.items() if k != "loss"} | {"loss": f"{last['loss']:.3g}"})
    bar.close()
    if not last and log_path.is_file():      # resumed at the end: the last logged losses
        rows = [r for r in read_log(log_path) if r.get("step") == step]
        last = {k: v for k, v in (rows[-1] if rows else {}).items()
                if k not in ("step", "lr") and not k.startswith(("w_", "val_"))}
    final = out / "final.pt"
    if lead:
        _save(final, trainable.export().state_dict())
        try:
            plot_curves(log_path, out / "curve.png", f"{label or recipe.name} ({recipe.task})")
        except Exception as exc:   # noqa: BLE001 - a plot must not lose a finished training
            notes.append(f"training curve not drawn: {type(exc).__name__}: {exc}")
    if distributed:
        import torch.distributed as dist
        dist.barrier()
    return Outcome(out, final, step, last, best, best_step, time.perf_counter() - t0, resumed, notes)


@torch.no_grad()
def evaluate(trainable: Trainable, recipe: Recipe, weights: dict, dev: torch.device, autocast) -> dict[str, float]:
    """Mean losses over the first ``eval_batches`` batches of the validation split (the same
    samples at every evaluation); ``loss`` is their weighted total."""
    data = trainable.dataset(recipe.val_split)
    sums: dict[str, float] = {}
    was = trainable.training
    trainable.eval()
    try:
        for b in range(recipe.eval_batches):
            idx = range(b * recipe.batch_size, (b + 1) * recipe.batch_size)
            batch = _move(torch.utils.data.default_collate([data[i] for i in idx]), dev)
            with autocast:
                ctx = trainable(batch)
                parts = compute_losses(ctx, weights, every=True)
                total = weighted_total({k: v for k, v in parts.items() if k in weights}, weights)
            for k, v in {**parts, "loss": total}.items():
                sums[k] = sums.get(k, 0.0) + float(v)
    finally:
        trainable.train(was)
    return {k: v / recipe.eval_batches for k, v in sums.items()}


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines after ``step`` (written after the last checkpoint of a killed run;
    the resumed run writes them again)."""
    if not path.is_file():
        return
    keep = []
    for raw in path.read_text().splitlines():
        try:
            if json.loads(raw)["step"] <= step:
                keep.append(raw)
        except (ValueError, KeyError, TypeError):
            continue       # a line cut by the kill
    write_atomic(path, "".join(k + "\n" for k in keep))


def read_log(path: str | Path) -> list[dict]:
    out = []
    for raw in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue
    return out


def plot_curves(log_path: Path, png: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = read_log(log_path)
    if not rows:
        return
    names = [k for k in rows[-1] if k not in ("step", "lr") and not k.startswith(("w_", "val_"))]
    fig, ax = plt.subplots(figsize=(7, 4))
    for k in names:
        pts = [(r["step"], r[k]) for r in rows if k in r]
        if pts:
            xs, ys = zip(*pts)
            window = max(1, len(ys) // 50)
            smooth = [sum(ys[max(0, i - window + 1):i + 1]) / len(ys[max(0, i - window + 1):i + 1])
                      for i in range(len(ys))]
            ax.plot(xs, smooth, label=f"train {k}")
    for k in sorted({k for r in rows for k in r if k.startswith("val_")}):
        pts = [(r["step"], r[k]) for r in rows if k in r]
        xs, ys = zip(*pts)
        ax.plot(xs, ys, "o--", label=k.replace("val_", "val "))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
