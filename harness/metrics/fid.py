"""FID: pytorch-fid's Frechet Inception Distance between generated and reference frames.

Every generated frame of every clip forms one set, every reference frame the other; each
set becomes the mean and covariance of its 2048-d pool3 Inception features
(``harness.metrics.inception``) and the score is the Frechet distance between the two
Gaussians, computed as ``pytorch_fid.fid_score.calculate_frechet_distance`` does. Scores
at other feature sizes or with other weights are not comparable, so both are recorded."""
from __future__ import annotations

import sys
import warnings
from typing import Optional

import numpy as np
from scipy import linalg

from ..canonical_weights import MissingWeights
from ..samples import Clip
from ..errors import BadInput
from . import inception
from .base import Consumes, Result, register_quality_metric
from .options import Option

MIN_SAMPLES = inception.DIMS     # below this the covariance is rank-deficient
REGIONS = ("frame",)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """Matrix square root. SciPy 1.18 removed ``sqrtm(disp=...)``, which pytorch-fid
    passes only to silence the singular-matrix message; the root itself is the same. The
    singular case is handled below by the finiteness check, so its warning is muted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return linalg.sqrtm(a)


def frechet_distance_details(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                             sigma2: np.ndarray, eps: float = 1e-6) -> tuple[float, list[str]]:
    """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), and notes on what
    had to be done to get it.

    d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)). As in pytorch-fid:
    a non-finite square root is retried with ``eps`` on both diagonals; a complex root is
    accepted (its real part) only when the imaginary parts of its diagonal are all within
    1e-3 of zero, else ``ValueError``."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape:
        raise BadInput(f"Frechet distance: mean vectors differ in length ({mu1.shape} vs {mu2.shape})")
    if sigma1.shape != sigma2.shape:
        raise BadInput(f"Frechet distance: covariances differ in shape ({sigma1.shape} vs {sigma2.shape})")
    notes = []
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        notes.append(f"singular covariance product; added {eps} to the diagonal of both covariances")
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        notes.append(f"complex square root; dropped an imaginary part of at most "
                     f"{float(np.max(np.abs(covmean.imag))):.3g}")
        covmean = covmean.real
    value = diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)
    return float(value), notes


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """pytorch-fid's ``calculate_frechet_distance``, without the removed ``disp`` argument."""
    return frechet_distance_details(mu1, sigma1, mu2, sigma2, eps)[0]


def split_sets(clips: list[Clip], metric: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Generated frames of every clip, and reference frames of those that have them."""
    if not clips:
        raise BadInput(f"{metric}: no clips to score")
    fakes = [c.fake for c in clips]
    reals = [c.real for c in clips if c.real is not None]
    if not reals:
        raise BadInput(f"{metric}: no clip has reference frames (clips: "
                       f"{', '.join(c.name for c in clips[:5])}{' ...' if len(clips) > 5 else ''}); "
                       f"{metric} compares generated frames against reference frames")
    return fakes, reals


def check_region(region: str, metric: str) -> None:
    if region not in REGIONS:
        raise BadInput(f"{metric}: option region={region!r} is not supported; "
                       f"choose one of {', '.join(REGIONS)}")


def backend_name() -> str:
    return f"pytorch-fid {inception.package_versions()['pytorch_fid']} InceptionV3 pool3"


def small_sample_warning(n_fake: int, n_real: int) -> Optional[str]:
    small = min(n_fake, n_real)
    if small >= MIN_SAMPLES:
        return None
    return (f"FID from {n_fake} generated and {n_real} reference frames: fewer than {MIN_SAMPLES} "
            f"samples make the {inception.DIMS}-d covariance rank-deficient, so the score is "
            f"biased upward and not comparable with scores from larger sets (KID is unbiased)")


@register_quality_metric(
    "fid", direction="lower", unit="FID", consumes=Consumes(reference="set"),
    schema={"region": Option("choice", choices=REGIONS)},
    options={"region": "frame", "batch_size": 50, "device": "cpu"},
    description="Frechet Inception Distance (pytorch-fid, 2048-d pool3) of all generated "
                "frames against all reference frames")
def score(clips: list[Clip], options: dict) -> Result:
    check_region(options["region"], "fid")
    fakes, reals = split_sets(clips, "fid")
    batch_size, device = int(options["batch_size"]), str(options["device"])
    settings = {**inception.SETTINGS, "region": options["region"], "batch_size": batch_size,
                "device": device, "statistics": "numpy mean and covariance (float64)",
                "versions": inception.package_versions()}
    try:
        loaded = inception.load_model(device)
        provenance = loaded[1]
        fake_feats = inception.features(fakes, batch_size, device, loaded)
        mu_real, sigma_real, cache = inception.reference_statistics(reals, batch_size, device, loaded)
    except MissingWeights as exc:
        return Result(None, retry=True, backend=backend_name(), settings=settings, reason=str(exc))
    n_fake, n_real = len(fake_feats), sum(len(r) for r in reals)
    settings.update(weights=provenance, n_fake=n_fake, n_real=n_real)
    stats: dict = {"n_fake": n_fake, "n_real": n_real, "reference_cache": cache["cache"]}
    if min(n_fake, n_real) < 2:
        return Result(None, n=n_fake, stats=stats, backend=backend_name(), settings=settings,
                      reason=f"FID needs at least 2 frames on each side; got {n_fake} generated "
                             f"and {n_real} reference frames")
    warning = small_sample_warning(n_fake, n_real)
    if warning:
        stats["warning"] = warning
        print(f"warning: {warning}", file=sys.stderr)
    mu_fake, sigma_fake = inception.statistics(fake_feats)
    try:
        value, notes = frechet_distance_details(mu_fake, sigma_fake, mu_real, sigma_real)
    except ValueError as exc:
        return Result(None, n=n_fake, stats=stats, backend=backend_name(), settings=settings,
                      reason=f"FID is undefined here: the covariance square root has a large "
                             f"imaginary part ({exc}); {warning or 'check the inputs'}")
    if notes:
        stats["notes"] = notes
    return Result(value, n=n_fake, stats=stats, backend=backend_name(), settings=settings)
