"""Training configuration and the two presets (``preview`` for 2 CPU cores, ``full`` = the paper)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from dyntet.model.config import AppearanceConfig, GeometryConfig, LightConfig, ModelConfig


@dataclass
class TrainConfig:
    """Everything a training run needs besides the dataset; stored as ``config.json`` in the run."""

    preset: str = "full"
    model: ModelConfig = field(default_factory=ModelConfig)
    iterations: int = 20_000
    """Number of steps; with a time budget (``minutes`` > 0) only an upper bound."""
    minutes: float = 0.0
    """Time budget of the run in minutes (0: none). When set, training stops when the run's total time
    (SDF initialisation included, resumed time counted) reaches it, and the learning-rate schedule is
    laid out over the budget instead of over ``iterations``: the rate reaches ``final_learning_rate``
    when the time is up, so a short budget still ends on a fully decayed, settled model."""
    batch_size: int = 4
    render_size: int = 512
    """Side of the rendered training images; the dataset's frames are resized to it."""
    learning_rate: float = 1e-3
    final_learning_rate: float = 1e-5
    """Adam's rate decays exponentially from ``learning_rate`` to this at the last iteration."""
    appearance_lr_scale: float = 1.0
    """Multiplier of the learning rate for the appearance network G and the light (hash grids like
    larger steps than the geometry MLPs)."""
    lambda_lpips: float = 0.1
    lambda_ndl: float = 100.0
    lambda_fdl: float = 100.0
    """λ3 of Eq. 15. Its scale depends on the face model's units: with our landmark/synthetic models in
    grid units the raw loss is ~1e-6, and at 100 the image gradients through f2 drown it — the mesh then
    hardly moves with expression (measured: 0.08 mm where the rig moves 12.5 mm). The preview preset uses
    1e4 (measured: 9 mm of 12.5 mm, held-out head PSNR 28.9 → 31.1 dB at 1800 iterations; see
    docs/benchmarks.md)."""
    lambda_elastic: float = 100.0
    lambda_light: float = 0.0
    """Weight of the light regulariser (keeps the cube map near white)."""
    ndl_half_range: float = 0.1
    """a of Eq. 14, in grid units (the grid cube is 1 unit wide)."""
    face_samples: int = 4096
    """Face-model surface points per iteration for Eqs. 14–15."""
    face_sample_motion: float = 0.0
    """Draw those points by area × (1 + this × the triangle's tracked motion / the mean motion), so the
    moving lips and jaw get their share of Eq. 15 (:func:`dyntet.model.face_prior.motion_emphasis`);
    0 draws by area alone (the paper)."""
    feature_weight: float = 0.0
    """Extra weight of the image loss inside the eye and mouth boxes (from the tracked landmarks): each
    pixel there counts ``1 + this``. Why: the boxes are a few percent of the head, and their rare states
    (closed lids, an open mouth) leave too small a share of the loss to be learnt at preview length
    (docs/benchmarks.md); 0 weighs every pixel alike (the paper)."""
    rare_frame_power: float = 0.0
    """Draw training frames with probability ∝ rarity^this, rarity the distance of a frame's face to its
    nearest neighbours among the clip's faces (:mod:`dyntet.train.frame_sampling`), so blinks and wide
    mouths are seen more often; 0 draws uniformly (the paper)."""
    topology_refresh_every: int = 1
    """Evaluate f1 on the whole grid every this many steps, in between only near the surface
    (:class:`dyntet.train.surface_cache.SurfaceCache`); 1 is the reference, every step."""
    sdf_init_steps: int = 1500
    """Steps fitting f1 to the head prior before training (the first mesh is already a head)."""
    checkpoint_every: int = 500
    checkpoint_minutes: float = 5.0
    log_every: int = 10
    preview_every: int = 250
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0
    """CPU threads for torch (0: leave torch's default)."""

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch_size < 1 or self.render_size < 16:
            raise ValueError("iterations and batch_size must be >= 1 and render_size >= 16")
        if self.feature_weight < 0:
            raise ValueError(f"feature_weight must be >= 0 (0: every pixel alike), got {self.feature_weight}")
        if self.rare_frame_power < 0:
            raise ValueError(f"rare_frame_power must be >= 0 (0: uniform), got {self.rare_frame_power}")
        if self.minutes < 0:
            raise ValueError(f"minutes must be >= 0 (0: no time budget), got {self.minutes}")
        if not 0 < self.final_learning_rate <= self.learning_rate:
            raise ValueError("need 0 < final_learning_rate <= learning_rate")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        data = dict(data)
        model = data.pop("model", {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return cls(model=ModelConfig(geometry=GeometryConfig(**model.get("geometry", {})),
                                     appearance=AppearanceConfig(**model.get("appearance", {})),
                                     light=LightConfig(**model.get("light", {}))), **data)

    def with_overrides(self, overrides: dict[str, Any]) -> "TrainConfig":
        """A copy with dotted overrides applied, e.g. ``{"iterations": 100, "model.geometry.grid_resolution": 32}``."""
        data = self.to_dict()
        for key, value in overrides.items():
            node = data
            *parents, leaf = key.split(".")
            for part in parents:
                if part not in node or not isinstance(node[part], dict):
                    raise ValueError(f"unknown setting {key!r}")
                node = node[part]
            if leaf not in node:
                raise ValueError(f"unknown setting {key!r}")
            node[leaf] = _typed(key, node[leaf], value)
        return TrainConfig.from_dict(data)


RESUMABLE_SETTINGS = ("iterations", "minutes", "device")
"""What a resumed run may change: how long it trains and where. Everything else is the run's own."""


def resume_overrides(saved: TrainConfig, overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides a resume applies; the one rule for the CLI and the server.

    A setting the run already has is accepted (a client may resend its whole form); a different value of
    anything but :data:`RESUMABLE_SETTINGS` is refused, since the checkpoint was trained with the old one.
    """
    current = saved.to_dict()
    changed = []
    for key, value in overrides.items():
        if key in RESUMABLE_SETTINGS:
            continue
        node: Any = current
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            raise ValueError(f"unknown setting {key!r}")
        if _typed(key, node, value) != node:
            changed.append(f"{key} (the run has {node!r}, asked {value!r})")
    if changed:
        raise ValueError("a resumed run keeps its settings; only " + ", ".join(RESUMABLE_SETTINGS)
                         + " may change, not " + "; ".join(changed)
                         + ". Train a new run into another folder, or pass --force to replace this one")
    return {k: v for k, v in overrides.items() if k in RESUMABLE_SETTINGS}


_MISSING = object()


def _typed(key: str, current: Any, value: Any) -> Any:
    """``value`` checked against the type of the setting's current value (ints widen to floats)."""
    def fail(expected: str) -> ValueError:
        return ValueError(f"setting {key!r} must be {expected}, got {value!r} ({type(value).__name__})")

    if isinstance(current, dict):
        raise fail("a group of settings: set one of its fields with a dotted key")
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise fail("true or false")
    elif isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
    elif isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
        return float(value)
    elif isinstance(current, str):
        if not isinstance(value, str):
            raise fail("a string")
    elif isinstance(current, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(current):
            raise fail(f"a list of {len(current)} values")
    return value


def preset(name: str) -> TrainConfig:
    """``full``: the paper's settings (a GPU). ``preview``: minutes on 2 CPU cores."""
    if name == "full":
        return TrainConfig(preset="full")
    if name == "preview":
        return TrainConfig(
            preset="preview",
            model=ModelConfig(
                geometry=GeometryConfig(grid_resolution=64, hidden_dim=64, expression_feature_dim=64,
                                        smoothing_passes=8, face_motion_reach_m=0.03),
                appearance=AppearanceConfig(hash_log2_table=17, hash_max_resolution=512, hidden_dim=128,
                                            num_layers=4, expression_dim=8),
                light=LightConfig(cube_resolution=16),
            ),
            iterations=20_000, minutes=16.0, batch_size=1, render_size=256, learning_rate=1e-3, final_learning_rate=1e-5,
            appearance_lr_scale=10.0, face_samples=2048, sdf_init_steps=1000, lambda_fdl=1e4, topology_refresh_every=8,
            checkpoint_every=200, checkpoint_minutes=2.0, preview_every=200)
    raise ValueError(f"unknown preset {name!r}: choose preview or full")


PRESETS = ("preview", "full")
