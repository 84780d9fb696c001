"""A torso under a driven head: the avatar's own footage, re-timed to follow the driver's head motion.

DynTet models the head only. Rendering it over the background plate gives a floating head; the peers
(ER-NeRF, RAD-NeRF, the paper's videos) show a whole person. We keep the footage's real torso and pick,
for every driven frame, the training frame whose head sits where the driven head sits — measured in
pixels, by projecting a few face points (centroid, chin, cheeks) with both poses — because the neck
joins the torso where the two heads overlap. Picking each frame on its own would make the torso jitter
between far-apart frames, so the choice is a shortest path over time: playing the footage on (i → i+1)
or holding a frame is free, a cut to any other frame costs ``jump_cost_px`` of misplacement, and
dynamic programming finds the sequence with the least total cost (the "video textures" idea, Schödl et
al., SIGGRAPH 2000). The chosen frame's head pixels above its chin are replaced by the plate behind a
soft, slightly grown edge, so no sliver of the footage's own head shows beside the rendered one; below
the chin the footage keeps its own neck, which the rendered head's neck overlaps, so the join shows
skin instead of a gap of background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TorsoConfig:
    jump_cost_px: float = 6.0
    """Cost of a cut between non-consecutive footage frames, in pixels of head misplacement (at the
    dataset's resolution): higher plays the footage longer before cutting."""
    hold_cost_px: float = 0.5
    """Cost of showing the same footage frame again (a hold): cheap, but playing on is preferred."""
    feather_px: float = 2.0
    """The head's cut-out grows by this many pixels and fades over as many again (dataset resolution)."""


def anchor_points(mean_shape: np.ndarray) -> np.ndarray:
    """Head-space points whose image positions say where a head sits: centroid, chin, both cheeks."""
    points = np.asarray(mean_shape, np.float64)
    picks = [points.mean(0), points[points[:, 1].argmin()], points[points[:, 0].argmin()],
             points[points[:, 0].argmax()]]
    return np.stack(picks)


def project(poses: np.ndarray, points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pixels of head-space ``points`` [A, 3] under head-to-camera ``poses`` [N, 4, 4] → float [N, A, 2].

    The camera looks down −Z (OpenGL convention, as the dataset's poses)."""
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    cam = np.einsum("nij,aj->nai", poses[:, :3, :3].astype(np.float64), points) + poses[:, None, :3, 3]
    depth = np.maximum(-cam[..., 2], 1e-6)
    return np.stack([cx + fx * cam[..., 0] / depth, cy - fy * cam[..., 1] / depth], -1)


def retime(footage_poses: np.ndarray, driven_poses: np.ndarray, points: np.ndarray, intrinsics: np.ndarray,
           config: TorsoConfig = TorsoConfig()) -> np.ndarray:
    """The footage frame behind each driven frame: int64 [T] indices into ``footage_poses`` [N, 4, 4].

    Minimises Σ_t misplacement(t, frame_t) + transition costs (module docstring) exactly, in O(T·N).
    """
    ours = project(footage_poses, points, intrinsics)                           # [N, A, 2]
    theirs = project(driven_poses, points, intrinsics)                          # [T, A, 2]
    n, t_count = len(ours), len(theirs)
    cost = np.empty(n)
    back = np.empty((t_count, n), np.int64)
    frames = np.arange(n)
    for t in range(t_count):
        misplacement = np.linalg.norm(ours - theirs[t][None], axis=-1).mean(-1)  # [N] pixels
        if t == 0:
            cost = misplacement
            back[0] = frames
            continue
        best = int(cost.argmin())
        options = np.stack([np.full(n, cost[best] + config.jump_cost_px),      # cut from the best frame
                            cost + config.hold_cost_px,                        # hold the same frame
                            np.concatenate([[np.inf], cost[:-1]])])            # play on from i − 1
        choice = options.argmin(0)
        back[t] = np.where(choice == 0, best, np.where(choice == 1, frames, frames - 1))
        cost = options[choice, frames] + misplacement
    path = np.empty(t_count, np.int64)
    path[-1] = int(cost.argmin())
    for t in range(t_count - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def chin_row(pose: np.ndarray, mean_shape: np.ndarray, intrinsics: np.ndarray) -> float:
    """Image row of the chin of a head at ``pose`` (head-to-camera [4, 4])."""
    return float(project(pose[None], anchor_points(mean_shape)[1:2], intrinsics)[0, 0, 1])


def soft_cutout(head: torch.Tensor, feather_px: float, keep_below_row: float | None = None) -> torch.Tensor:
    """Where the plate replaces the footage: head float [H, W, 1] in {0, 1} → float [H, W, 1] in [0, 1].

    The head region grown by ``feather_px`` is fully replaced; the weight falls to 0 over the next
    ``feather_px`` pixels. Below ``keep_below_row`` (the chin) the weight fades to 0 over
    ``feather_px`` rows: the footage's neck stays."""
    radius = max(1, int(round(feather_px)))
    x = head.permute(2, 0, 1)[None]
    grown = F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)
    soft = F.avg_pool2d(F.max_pool2d(grown, 2 * radius + 1, stride=1, padding=radius), 2 * radius + 1,
                        stride=1, padding=radius, count_include_pad=False)
    weight = torch.maximum(grown, soft)[0].permute(1, 2, 0).clamp(0, 1)
    if keep_below_row is not None:
        rows = torch.arange(head.shape[0], dtype=head.dtype, device=head.device)
        weight = weight * ((keep_below_row + radius - rows) / radius).clamp(0, 1)[:, None, None]
    return weight
