"""Run by tests/test_train.py under ``torchrun``: a few engine steps of a small model (no
BatchNorm) on index-seeded data, writing final.pt. ``python ddp_step.py OUT``."""
import sys

import torch
from torch import nn

from harness.train.engine import Trainable, train
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
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, batch):
        return {"pred": self.net(batch["x"]), "target": batch["y"]}

    def export(self):
        return self.net

    def dataset(self, split):
        return Points()


@register_loss("mse_test", needs=("pred", "target"))
def mse_test(ctx):
    return ((ctx["pred"] - ctx["target"]) ** 2).mean()


if __name__ == "__main__":
    recipe = parse_recipe({"name": "ddp", "task": "generator", "steps": int(sys.argv[2]), "batch_size": 4,
                           "losses": {"mse_test": 1.0}, "optimiser": {"name": "sgd", "lr": 0.05},
                           "eval_every": 1000, "checkpoint_every": 1000}, "ddp test")
    train(Regression(), recipe, sys.argv[1], progress=False)
