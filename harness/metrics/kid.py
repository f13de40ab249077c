"""KID: Kernel Inception Distance on the same Inception features as FID, computed as
torch-fidelity computes it.

A cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 on the 2048-d pool3 features; the
unbiased MMD^2 estimate between a random subset of generated and of reference features;
the mean (and spread) over ``kid_subsets`` subsets. Subsets are drawn as torch-fidelity
draws them (one ``numpy.random.RandomState(seed)``, generated subset first, without
replacement), so on the same features the two give the same number. Unlike FID, the
estimate is unbiased at small sample sizes. torch-fidelity refuses sets smaller than the
subset size; here the subset size is clipped to the smaller set and the clipped size is
recorded."""
from __future__ import annotations

import numpy as np

from ..canonical_weights import MissingWeights
from ..samples import Clip
from . import inception
from .base import Consumes, Result, register_quality_metric
from .options import Option
from .fid import REGIONS, backend_name as fid_backend, check_region, split_sets

DEGREE, COEF0 = 3, 1.0
SEED = 2020          # torch-fidelity's default rng_seed


def backend_name() -> str:
    return f"{fid_backend()}; KID estimator as torch-fidelity"


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    gamma = 1.0 / x.shape[1]
    return (np.matmul(x, y.T) * gamma + COEF0) ** DEGREE


def unbiased_mmd2(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased MMD^2: within-set kernel means without their diagonals, cross term over
    all pairs (torch-fidelity's ``mmd_est="unbiased"``)."""
    m = k_xx.shape[0]
    within_x = k_xx.sum(axis=1) - np.diagonal(k_xx)
    within_y = k_yy.sum(axis=1) - np.diagonal(k_yy)
    cross = k_xy.sum(axis=0)
    return (within_x.sum() + within_y.sum()) / (m * (m - 1)) - 2 * cross.sum() / (m * m)


def kid_from_features(fake: np.ndarray, real: np.ndarray, subsets: int = 100,
                      subset_size: int = 1000, seed: int = SEED) -> tuple[float, float, int]:
    """(mean, std, subset size used) of the unbiased MMD^2 over random subsets.

    ``subset_size`` is clipped to the smaller set (torch-fidelity would stop instead)."""
    size = min(subset_size, len(fake), len(real))
    rng = np.random.RandomState(seed)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        f = fake[rng.choice(len(fake), size, replace=False)]
        r = real[rng.choice(len(real), size, replace=False)]
        mmds[i] = unbiased_mmd2(polynomial_kernel(f, f), polynomial_kernel(f, r),
                                polynomial_kernel(r, r))
    return float(np.mean(mmds)), float(np.std(mmds)), size


@register_quality_metric(
    "kid", direction="lower", unit="KID", consumes=Consumes(reference="set"),
    schema={"region": Option("choice", choices=REGIONS)},
    options={"region": "frame", "kid_subsets": 100, "kid_subset_size": 1000, "seed": SEED,
             "batch_size": 50, "device": "cpu"},
    description="Kernel Inception Distance (torch-fidelity's estimator on pytorch-fid's "
                "2048-d Inception features) of all generated frames against all reference frames")
def score(clips: list[Clip], options: dict) -> Result:
    check_region(options["region"], "kid")
    fakes, reals = split_sets(clips, "kid")
    batch_size, device = int(options["batch_size"]), str(options["device"])
    subsets, subset_size, seed = int(options["kid_subsets"]), int(options["kid_subset_size"]), int(options["seed"])
    settings = {**inception.SETTINGS, "region": options["region"], "batch_size": batch_size,
                "device": device, "kernel": f"polynomial degree {DEGREE}, gamma 1/d, coef0 {COEF0:g}",
                "estimator": "unbiased MMD^2", "kid_subsets": subsets,
                "kid_subset_size": subset_size, "seed": seed,
                "versions": inception.package_versions()}
    try:
        loaded = inception.load_model(device)
        provenance = loaded[1]
        fake = inception.features(fakes, batch_size, device, loaded)
        real, cache = inception.reference_features(reals, batch_size, device, loaded)
    except MissingWeights as exc:
        return Result(None, retry=True, backend=backend_name(), settings=settings, reason=str(exc))
    settings.update(weights=provenance, n_fake=len(fake), n_real=len(real))
    if min(len(fake), len(real)) < 2 or subsets < 1:
        return Result(None, n=len(fake), backend=backend_name(), settings=settings,
                      reason=f"KID needs at least 2 frames on each side and one subset; got "
                             f"{len(fake)} generated, {len(real)} reference frames, {subsets} subsets")
    mean, std, used = kid_from_features(fake, real, subsets, subset_size, seed)
    settings["kid_subset_size_used"] = used
    stats = {"kid_std": std, "n_fake": len(fake), "n_real": len(real),
             "reference_cache": cache["cache"]}
    if used < subset_size:
        stats["note"] = f"subset size clipped from {subset_size} to {used} (the smaller set)"
    return Result(mean, n=len(fake), stats=stats, backend=backend_name(), settings=settings)
