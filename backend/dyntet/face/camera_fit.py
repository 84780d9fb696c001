"""One focal length for the clip plus a head pose per frame, from 2-D landmarks and a 3-D face.

We minimise the robust (Huber) landmark reprojection error

    Σ_t Σ_p ρ(‖π(f, R_t X_tp + t_t) − x_tp‖)

over the focal length f (shared) and every frame's rotation R_t and translation t_t, by
Levenberg–Marquardt with iteratively reweighted least squares. The normal equations have one 6×6
block per frame coupled only through f, so each step solves all frames at once with a Schur
complement on f: cost grows linearly with the clip. The principal point is the image centre.

A single focal length is weakly determined when the head barely turns or moves in depth (focal and
distance trade off); a mild log-normal prior keeps it near a plausible value then, and the data
overrule it when they can. Camera axes are OpenGL's (x right, y up, looking down −Z), so a head facing
the camera has ``R ≈ I`` and ``t_z < 0``. Pixels: x right, y down, origin at the top-left corner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CameraFitConfig:
    """Settings of the head-pose and focal-length fit."""

    focal: float | None = None
    """Known focal length in pixels (skip estimating it)."""
    focal_prior: float = 1.5
    """Centre of the focal prior, in units of the larger image side (≈ 37° horizontal field of view)."""
    focal_prior_sigma: float = 1.0
    """Width of the prior on ln f: being ``focal_prior_sigma`` away from the centre costs …"""
    focal_prior_rms_px: float = 0.1
    """… as much as this much extra RMS reprojection error on every landmark of every frame."""
    huber_px: float = 1.5
    """Residuals beyond this (pixels) count linearly: a few bad landmarks cannot drag a pose."""
    iterations: int = 30
    """Levenberg–Marquardt iterations of the joint fit."""
    focal_candidates: tuple[float, ...] = (0.5, 0.8, 1.2, 1.8, 2.7, 4.0, 6.0)
    """Starting focal lengths tried (units of the larger image side)."""
    search_frames: int = 120
    """Frames used to choose the starting focal length."""

    def __post_init__(self) -> None:
        if self.focal is not None and self.focal <= 0:
            raise ValueError(f"focal must be positive, got {self.focal}")
        if min(self.huber_px, self.focal_prior, self.focal_prior_sigma) <= 0 or self.focal_prior_rms_px < 0:
            raise ValueError("huber_px, focal_prior and focal_prior_sigma must be positive, "
                             "focal_prior_rms_px non-negative")
        if self.iterations < 1:
            raise ValueError(f"iterations must be ≥ 1, got {self.iterations}")


@dataclass
class CameraFit:
    """Result of :func:`fit_camera`."""

    focal: float
    """Focal length in pixels of the landmarks' image."""
    principal: tuple[float, float]
    """``(cx, cy)`` pixels."""
    rotation: np.ndarray
    """float64 [T, 3, 3] head-to-camera rotations."""
    translation: np.ndarray
    """float64 [T, 3] head-to-camera translations (metres)."""
    error_px: np.ndarray
    """float64 [T, P] reprojection error of every landmark (pixels)."""

    def pose(self) -> np.ndarray:
        """float64 [T, 4, 4] head-to-camera transforms."""
        out = np.tile(np.eye(4), (len(self.rotation), 1, 1))
        out[:, :3, :3] = self.rotation
        out[:, :3, 3] = self.translation
        return out


def project(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray, focal: float,
            principal: tuple[float, float]) -> np.ndarray:
    """Pinhole projection of head-space points.

    Args:
        points: float [T, P, 3] head space; rotation [T, 3, 3]; translation [T, 3].

    Returns:
        float64 [T, P, 2] pixels (x right, y down).
    """
    cam = np.einsum("tij,tpj->tpi", rotation, points) + translation[:, None, :]
    depth = np.maximum(-cam[..., 2], 1e-9)
    u = principal[0] + focal * cam[..., 0] / depth
    v = principal[1] - focal * cam[..., 1] / depth
    return np.stack([u, v], -1)


def rodrigues(omega: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] from axis-angle vectors [..., 3] (radians)."""
    theta = np.linalg.norm(omega, axis=-1, keepdims=True)
    axis = omega / np.maximum(theta, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    th = theta[..., None]
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + np.sin(th) * k + (1 - np.cos(th)) * (k @ k)


def rotation_log(rotation: np.ndarray) -> np.ndarray:
    """Axis-angle vectors [..., 3] (radians) of rotations [..., 3, 3] (angles below π)."""
    cos = np.clip((np.trace(rotation, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    theta = np.arccos(cos)
    vee = np.stack([rotation[..., 2, 1] - rotation[..., 1, 2], rotation[..., 0, 2] - rotation[..., 2, 0],
                    rotation[..., 1, 0] - rotation[..., 0, 1]], -1)
    sin = np.sin(theta)
    factor = np.where(sin > 1e-8, theta / np.maximum(2 * sin, 1e-12), 0.5)
    return vee * factor[..., None]


_CHUNK = 256
"""Frames per block when building the normal equations (bounds memory on long clips)."""


class _Problem:
    """Residuals, robust weights and the block normal equations of the reprojection fit."""

    def __init__(self, points: np.ndarray, observed: np.ndarray, principal: tuple[float, float],
                 huber: float, prior_log_f: float, prior_weight: float) -> None:
        self.points = points
        self.observed = observed
        self.principal = principal
        self.huber = huber
        self.prior_log_f = prior_log_f
        self.prior_weight = prior_weight

    def _chunks(self):
        return (slice(i, i + _CHUNK) for i in range(0, len(self.points), _CHUNK))

    def cost(self, rot, trans, log_f) -> float:
        f = float(np.exp(log_f))
        total = 0.5 * self.prior_weight * (log_f - self.prior_log_f) ** 2
        d = self.huber
        for part in self._chunks():
            res = project(self.points[part], rot[part], trans[part], f, self.principal) - self.observed[part]
            err = np.linalg.norm(res, axis=-1)
            total += float(np.where(err <= d, 0.5 * err ** 2, d * (err - 0.5 * d)).sum())
        return total

    def normal_equations(self, rot, trans, log_f, with_focal: bool):
        """Per-frame ``A [T, 6, 6]``, ``b [T, 6]``; with the focal also ``B_f [T, 6]``, ``c``, ``e``."""
        frames = len(self.points)
        a, b, bf = np.zeros((frames, 6, 6)), np.zeros((frames, 6)), np.zeros((frames, 6))
        c = self.prior_weight
        e = self.prior_weight * (log_f - self.prior_log_f)
        for part in self._chunks():
            a[part], b[part], bf[part], dc, de = self._block(rot[part], trans[part], self.points[part],
                                                             self.observed[part], float(np.exp(log_f)))
            c, e = c + dc, e + de
        return (a, b, bf, c, e) if with_focal else (a, b, None, None, None)

    def _block(self, rot, trans, points, observed, f):
        rx = np.einsum("tij,tpj->tpi", rot, points)                       # R X  [T, P, 3]
        cam = rx + trans[:, None, :]
        depth = np.maximum(-cam[..., 2], 1e-9)
        res = np.stack([self.principal[0] + f * cam[..., 0] / depth,
                        self.principal[1] - f * cam[..., 1] / depth], -1) - observed
        err = np.linalg.norm(res, axis=-1)
        weight = np.where(err <= self.huber, 1.0, self.huber / np.maximum(err, 1e-12))  # IRLS Huber
        # d(u, v)/d(camera point): [T, P, 2, 3]
        jc = np.zeros(cam.shape[:2] + (2, 3))
        jc[..., 0, 0] = f / depth
        jc[..., 0, 2] = f * cam[..., 0] / depth ** 2
        jc[..., 1, 1] = -f / depth
        jc[..., 1, 2] = -f * cam[..., 1] / depth ** 2
        # d(camera point)/d(ω) = −[R X]× (rotation updated as exp(ω) R), d/dt = I
        skew = np.zeros(rx.shape[:2] + (3, 3))
        skew[..., 0, 1], skew[..., 0, 2] = rx[..., 2], -rx[..., 1]
        skew[..., 1, 0], skew[..., 1, 2] = -rx[..., 2], rx[..., 0]
        skew[..., 2, 0], skew[..., 2, 1] = rx[..., 1], -rx[..., 0]
        jp = np.concatenate([jc @ skew, jc], -1)                          # [T, P, 2, 6]
        wjp = jp * weight[..., None, None]
        a = np.einsum("tpki,tpkj->tij", wjp, jp)
        b = np.einsum("tpki,tpk->ti", wjp, res)
        jf = res + observed - np.array(self.principal)                    # d(u, v)/d ln f = (u − cx, v − cy)
        bf = np.einsum("tpki,tpk->ti", wjp, jf)
        c = float((weight[..., None] * jf * jf).sum())
        e = float((weight[..., None] * jf * res).sum())
        return a, b, bf, c, e


def _levenberg_marquardt(problem: _Problem, rot, trans, log_f, iterations: int, with_focal: bool):
    lam = 1e-3
    cost = problem.cost(rot, trans, log_f)
    for _ in range(iterations):
        a, b, bf, c, e = problem.normal_equations(rot, trans, log_f, with_focal)
        improved = False
        for _ in range(8):
            damp = a + lam * (np.diagonal(a, axis1=1, axis2=2)[..., None] * np.eye(6) + 1e-9 * np.eye(6))
            if with_focal:
                ainv_b = np.linalg.solve(damp, np.stack([b, bf], -1))     # [T, 6, 2]
                schur = c * (1 + lam) - np.einsum("ti,ti->", bf, ainv_b[..., 1])
                rhs = e - np.einsum("ti,ti->", bf, ainv_b[..., 0])
                d_log_f = -rhs / schur if schur > 0 else 0.0
                step = -(ainv_b[..., 0] + ainv_b[..., 1] * d_log_f)
            else:
                step = -np.linalg.solve(damp, b[..., None])[..., 0]
                d_log_f = 0.0
            new_rot = rodrigues(step[:, :3]) @ rot
            new_trans = trans + step[:, 3:]
            new_log_f = log_f + d_log_f
            new_cost = problem.cost(new_rot, new_trans, new_log_f)
            if new_cost < cost:
                rot, trans, log_f = new_rot, new_trans, new_log_f
                converged = cost - new_cost < 1e-9 * max(cost, 1e-12)
                cost = new_cost
                lam = max(lam / 3, 1e-9)
                improved = True
                break
            lam *= 4
        if not improved or converged:
            break
    return rot, trans, log_f, cost


def initial_poses(input_from_head: tuple[np.ndarray, np.ndarray, np.ndarray], focal: float,
                  principal: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Poses from weak-perspective similarities ``(x, −y, −z)_px ≈ s R X + τ`` at a given focal length.

    The head origin then projects where the similarity puts it, at depth ``f / s``.
    """
    rot, s, tau = input_from_head
    depth = focal / s
    trans = np.stack([(tau[:, 0] - principal[0]) * depth / focal, (tau[:, 1] + principal[1]) * depth / focal,
                      -depth], -1)
    return rot.copy(), trans


def fit_camera(points: np.ndarray, observed: np.ndarray, image_size: tuple[int, int],
               input_from_head: tuple[np.ndarray, np.ndarray, np.ndarray],
               config: CameraFitConfig | None = None) -> CameraFit:
    """Fit one focal length and per-frame poses to landmarks.

    Args:
        points: float [T, P, 3] head-space landmark positions per frame (metres; expression included).
        observed: float [T, P, 2] tracked landmarks in pixels (x right, y down).
        image_size: ``(width, height)`` of the image the pixels refer to; its centre is the principal point.
        input_from_head: per-frame weak-perspective similarity (see :func:`initial_poses`) to start from.
        config: fit settings.

    Returns:
        A :class:`CameraFit`.
    """
    config = config or CameraFitConfig()
    points = np.asarray(points, np.float64)
    observed = np.asarray(observed, np.float64)
    if points.shape[:2] != observed.shape[:2] or points.shape[-1] != 3 or observed.shape[-1] != 2:
        raise ValueError(f"points [T, P, 3] and observed [T, P, 2] disagree: {points.shape}, {observed.shape}")
    if not (np.isfinite(points).all() and np.isfinite(observed).all()):
        raise ValueError("points and observed landmarks must be finite (pass tracked frames only)")
    width, height = image_size
    principal = (width / 2.0, height / 2.0)
    side = float(max(width, height))
    prior_log_f = float(np.log(config.focal_prior * side))
    frames, num_points = points.shape[:2]
    prior_weight = frames * num_points * config.focal_prior_rms_px ** 2 / config.focal_prior_sigma ** 2
    problem = _Problem(points, observed, principal, config.huber_px, prior_log_f, prior_weight)

    if config.focal is not None:
        log_f = float(np.log(config.focal))
    else:
        # Choose a start among candidate focal lengths on a subset of frames (poses only).
        pick = np.unique(np.linspace(0, frames - 1, min(frames, config.search_frames)).round().astype(int))
        sub = _Problem(points[pick], observed[pick], principal, config.huber_px, prior_log_f,
                       prior_weight * len(pick) / frames)
        sub_init = tuple(x[pick] for x in input_from_head)
        best = None
        for factor in config.focal_candidates:
            lf = float(np.log(factor * side))
            rot0, trans0 = initial_poses(sub_init, float(np.exp(lf)), principal)
            _, _, _, cost = _levenberg_marquardt(sub, rot0, trans0, lf, 8, with_focal=False)  # prior included
            if best is None or cost < best[0]:
                best = (cost, lf)
        log_f = best[1]
    rot, trans = initial_poses(input_from_head, float(np.exp(log_f)), principal)
    rot, trans, _, _ = _levenberg_marquardt(problem, rot, trans, log_f, 10, with_focal=False)
    if config.focal is None:
        rot, trans, log_f, _ = _levenberg_marquardt(problem, rot, trans, log_f, config.iterations, with_focal=True)
    rot, trans, _, _ = _levenberg_marquardt(problem, rot, trans, log_f, 5, with_focal=False)
    focal = float(np.exp(log_f))
    error = np.linalg.norm(project(points, rot, trans, focal, principal) - observed, axis=-1)
    return CameraFit(focal, principal, rot, trans, error)


def lift_landmarks(landmarks: np.ndarray, focal: float, principal: tuple[float, float]) -> np.ndarray:
    """Undo perspective in MediaPipe landmarks for a given focal length.

    MediaPipe's x, y are perspective projections and its z is depth relative to the head centre in
    the same pixel scale. A point at relative depth z (pixels) lies ``1 + z / f`` times further than the
    head centre, so it appears that much closer to the principal point; scaling its offset from the
    principal point back by that factor gives the shape as a weak-perspective (orthographic) camera at
    the head's distance would see it — the same for every head position and pose, when ``f`` is right.

    Args:
        landmarks: float [..., P, 3] pixels (x right, y down, z smaller = nearer).

    Returns:
        float64 [..., P, 3] pixels, same convention; ``f → ∞`` returns the input.
    """
    points = np.asarray(landmarks, np.float64)
    grow = 1.0 + points[..., 2] / focal
    out = points.copy()
    out[..., 0] = principal[0] + (points[..., 0] - principal[0]) * grow
    out[..., 1] = principal[1] + (points[..., 1] - principal[1]) * grow
    return out


@dataclass
class FocalEstimate:
    """Result of :func:`estimate_focal`."""

    focal: float
    """Pixels."""
    constrained: bool
    """False when the clip barely constrains the focal length and the prior value was used."""
    candidates: np.ndarray
    """float64 [C] focal lengths tried (pixels)."""
    rigidity: np.ndarray
    """float64 [C] non-rigid residual of the stable points at each candidate (relative RMS)."""


def _rigidity(landmarks: np.ndarray, focal: float, principal: tuple[float, float], weights: np.ndarray) -> float:
    from dyntet.face.align import generalized_procrustes

    shapes = lift_landmarks(landmarks, focal, principal) * np.array([1.0, -1.0, -1.0])
    aligned, reference = generalized_procrustes(shapes, weights, scale=True, iterations=3)
    keep = weights > 0
    residual = aligned[:, keep] - reference[keep]
    size = np.sqrt(((reference[keep] - reference[keep].mean(0)) ** 2).sum(-1).mean())
    return float(np.sqrt((residual ** 2).sum(-1).mean()) / size)


def estimate_focal(landmarks: np.ndarray, image_size: tuple[int, int], weights: np.ndarray,
                   config: CameraFitConfig | None = None, max_frames: int = 150) -> FocalEstimate:
    """The focal length under which the rigid part of the face stays most rigid over the clip.

    With the wrong focal length, undoing perspective (:func:`lift_landmarks`) leaves distortions that
    depend on where the head is and how it is turned, so the stable points (``weights``) cannot be
    aligned across frames as well as with the right one. A log-spaced search, then golden-section
    refinement. When the residual barely changes between half and twice the best value (by 0.5 %, and
    by more than rounding error), the clip does not constrain the focal length and ``config.focal_prior`` is used.

    Args:
        landmarks: float [T, P, 3] tracked MediaPipe pixels.
        image_size: ``(width, height)``; the principal point is the centre.
        weights: float [P] the stable points (from :func:`dyntet.face.align.stable_point_weights`).
    """
    config = config or CameraFitConfig()
    landmarks = np.asarray(landmarks, np.float64)
    if len(landmarks) > max_frames:
        landmarks = landmarks[np.linspace(0, len(landmarks) - 1, max_frames).round().astype(int)]
    width, height = image_size
    side = float(max(width, height))
    principal = (width / 2.0, height / 2.0)
    factors = np.exp(np.linspace(np.log(0.4), np.log(40.0), 15))
    costs = np.array([_rigidity(landmarks, f * side, principal, weights) for f in factors])
    best = int(np.argmin(costs))
    lo, hi = np.log(factors[max(best - 1, 0)]), np.log(factors[min(best + 1, len(factors) - 1)])
    golden = (np.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - golden * (b - a), a + golden * (b - a)
    fc, fd = (_rigidity(landmarks, np.exp(x) * side, principal, weights) for x in (c, d))
    for _ in range(10):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - golden * (b - a)
            fc = _rigidity(landmarks, np.exp(c) * side, principal, weights)
        else:
            a, c, fc = c, d, fd
            d = a + golden * (b - a)
            fd = _rigidity(landmarks, np.exp(d) * side, principal, weights)
    factor = float(np.exp((a + b) / 2))
    at_best = min(fc, fd, costs[best])
    half = _rigidity(landmarks, factor / 2 * side, principal, weights)
    double = _rigidity(landmarks, factor * 2 * side, principal, weights)
    interior = 0 < best < len(factors) - 1
    # The 1e-9 floor: on noise-free input every cost is rounding error (~1e-15) and their ratios are
    # meaningless, so only a rise that is large in absolute terms as well counts as a constraint.
    constrained = interior and min(half, double) > at_best * 1.005 + 1e-9
    focal = factor * side if constrained else config.focal_prior * side
    return FocalEstimate(float(focal), bool(constrained), factors * side, costs)
