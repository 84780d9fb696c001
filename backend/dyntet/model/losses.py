"""DynTet losses (paper Eqs. 13–16). Each returns a scalar tensor; weights live in the training config."""

from __future__ import annotations

import logging

import torch

from dyntet.model.face_prior import FaceSamples
from dyntet.model.networks import GeometryNetwork

log = logging.getLogger(__name__)


def image_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 13, first term: MSE over every pixel and channel (sRGB images in [0, 1], [B, H, W, 3]), each
    pixel's squared error times ``weight`` [B, H, W, 1] when given (the mean is still over all pixels)."""
    squared = (pred - target) ** 2
    return torch.mean(squared if weight is None else squared * weight)


def mask_mse(alpha: torch.Tensor, head_mask: torch.Tensor) -> torch.Tensor:
    """Eq. 13, second term: MSE between rendered head coverage and the head mask ([B, H, W, 1])."""
    return torch.mean((alpha - head_mask) ** 2)


def normal_distance_loss(geometry: GeometryNetwork, samples: FaceSamples, half_range: float,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. 14: f1 at points displaced along the face normal by s ~ U(−a, a) should read s.

    Only the neighbourhood of the face surface is constrained, so the rest of the head stays free.
    """
    n = samples.points.shape[0]
    s = (torch.rand(n, 1, generator=generator) * 2 - 1).to(samples.points) * half_range
    sdf, _ = geometry.sdf_elastic(samples.points + s * samples.normals)
    return torch.mean((sdf - s[:, 0]) ** 2)


def deformation_loss(geometry: GeometryNetwork, samples: FaceSamples, features: torch.Tensor,
                     expression_delta: torch.Tensor, face_motion: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 15 and the elastic regulariser R_es at face-model points.

    Args:
        features: float [B, D] expression features of B frames.
        expression_delta: float [B, K] α − ᾱ of those frames.
        face_motion: float [B, N, 3], the face model's motion the avatar already adds at the samples
            (:meth:`dyntet.model.dyntet.DynTet.face_motion_at`), or None.
    Returns:
        (L_fdl, R_es): ‖e·f2 (+ face motion) − U_exp(α − ᾱ)‖² averaged over points, frames and axes; mean e².
    """
    _, elastic = geometry.sdf_elastic(samples.points)
    offsets = elastic[None, :, None] * geometry.offsets(geometry.position_code(samples.points), features)
    if face_motion is not None:
        offsets = offsets + face_motion
    target = torch.einsum("bk,knd->bnd", expression_delta, samples.basis)
    return torch.mean((offsets - target) ** 2), torch.mean(elastic ** 2)


_warned: list[bool] = []  # say it once per process


class OptionalLPIPS:
    """LPIPS when the ``lpips`` package and its weights are already on this machine; otherwise skipped.

    Never downloads: the backbone weights must be in the local torch cache. Says once why it is off.
    """

    def __init__(self, enabled: bool) -> None:
        self.model = None
        self.reason = "disabled by configuration"
        if enabled:
            self.model, self.reason = _load_lpips()
            if self.model is None and not _warned:
                _warned.append(True)
                log.warning("LPIPS skipped: %s", self.reason)

    @property
    def available(self) -> bool:
        return self.model is not None

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.model is None:
            return pred.new_zeros(())
        to_nchw = lambda x: x.permute(0, 3, 1, 2) * 2 - 1  # noqa: E731
        return self.model(to_nchw(pred), to_nchw(target)).mean()


def _load_lpips():
    import importlib.util
    import os

    if importlib.util.find_spec("lpips") is None:
        return None, "the optional package 'lpips' is not installed (see README: optional extras)"
    # Where torchvision keeps downloaded weights; we only look, never fetch.
    torch_home = os.environ.get("TORCH_HOME", os.path.join(os.path.expanduser("~"), ".cache", "torch"))
    hub = os.path.join(torch_home, "hub", "checkpoints")
    if not os.path.isdir(hub) or not any(name.startswith("alexnet") for name in os.listdir(hub)):
        return None, f"AlexNet backbone weights are not in {hub}; place them there to enable LPIPS"
    try:
        import lpips  # type: ignore

        model = lpips.LPIPS(net="alex", verbose=False)
        for p in model.parameters():
            p.requires_grad_(False)
        return model, ""
    except Exception as exc:  # an optional extra: any import/initialisation failure just turns it off
        return None, f"lpips failed to initialise ({exc})"
