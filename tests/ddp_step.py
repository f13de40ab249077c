"""Run by tests/test_train.py under ``torchrun``: a few engine steps of a small model (no
BatchNorm) on index-seeded data, writing final.pt. ``python ddp_step.py OUT STEPS [disc]``:
with ``disc`` a small discriminator trains beside it (the HQ recipe's pattern: a
perceptual loss in the step, then the discriminator's own update), and final.pt holds
both."""
import sys

import torch
from torch import nn

from harness.train.engine import Trainable, discriminator_step, train
from harness.train.losses import register_loss
from harness.train.recipe import parse_recipe


class Points(torch.utils.data.Dataset):
    def __len__(self):
        return 10**6

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(int(i))
        x = torch.randn(8, generator=g)
        return {"x": x, "y": (x * torch.arange(8.0)).sum(0, keepdim=True) + 0.1 * torch.randn(1, generator=g)}


class Regression(Trainable):
    def __init__(self, disc: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
        self.disc = nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1), nn.Sigmoid()) if disc else None
        self.disc_opt = torch.optim.SGD(self.disc.parameters(), lr=0.1) if disc else None

    def forward(self, batch):
        pred = self.net(batch["x"])
        ctx = {"pred": pred, "target": batch["y"]}
        if self.disc is not None:
            ctx["disc_on_pred"] = self.disc(pred)
        return ctx

    def trained_parameters(self):
        return list(self.net.parameters())

    def after_step(self, ctx, autocast):
        if self.disc is None:
            return {}
        return discriminator_step(self.disc, self.disc_opt, ctx["target"], ctx["pred"], autocast)

    def export(self):
        return self if self.disc is not None else self.net

    def dataset(self, split):
        return Points()


@register_loss("mse_test", needs=("pred", "target"))
def mse_test(ctx):
    return ((ctx["pred"] - ctx["target"]) ** 2).mean()


if __name__ == "__main__":
    disc = sys.argv[3:] == ["disc"]
    recipe = parse_recipe({"name": "ddp", "task": "generator", "steps": int(sys.argv[2]), "batch_size": 4,
                           "losses": {"mse_test": 1.0, **({"disc_perceptual": 0.5} if disc else {})},
                           "optimiser": {"name": "sgd", "lr": 0.05},
                           "eval_every": 1000, "checkpoint_every": 1000}, "ddp test")
    train(Regression(disc), recipe, sys.argv[1], progress=False)
