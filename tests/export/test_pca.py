"""PCA blend-shape rig: exact on low-rank data, honest error figures, tolerance picking."""

from __future__ import annotations

import numpy as np
import pytest

from dyntet.export.pca import PcaConfig, fit_pca_rig, measure_rig, normalize_weights
from dyntet.formats.sequence import BlendShapeRig


def low_rank_sequence(frames: int = 40, vertices: int = 50, rank: int = 3, seed: int = 0) -> np.ndarray:
    """float32 [T, V, 3] = mean + Σ_r c[t, r] · shape_r with shapes of centimetre size."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 0.1, (vertices, 3))
    shapes = rng.normal(0, 0.01, (rank, vertices, 3))
    coef = rng.normal(0, 1, (frames, rank))
    return (mean + np.tensordot(coef, shapes, axes=1)).astype(np.float32)


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_recovers_a_low_rank_sequence(method: str) -> None:
    verts = low_rank_sequence(rank=3)
    rig, report = fit_pca_rig(verts, PcaConfig(num_targets=3, method=method))
    assert rig.num_targets == 3 and report.num_targets == 3
    assert report.rms_mm < 1e-3 and report.max_mm < 1e-3        # float32 round-off only (micrometres)
    assert report.explained > 1 - 1e-9
    np.testing.assert_allclose(rig.reconstruct(), verts, atol=2e-6)


def test_too_few_targets_has_the_predicted_error() -> None:
    verts = low_rank_sequence(rank=3)
    rig, report = fit_pca_rig(verts, PcaConfig(num_targets=2))
    direct = np.sqrt(((rig.reconstruct().astype(np.float64) - verts) ** 2).sum(-1))
    assert report.rms_mm == pytest.approx(np.sqrt((direct ** 2).mean()) * 1e3, rel=1e-6)
    assert report.max_mm == pytest.approx(direct.max() * 1e3, rel=1e-6)
    assert report.rms_mm > 1.0  # one of three centimetre-sized shapes is missing


def test_exact_at_full_rank_and_capped_at_the_data_rank() -> None:
    rng = np.random.default_rng(1)
    verts = rng.normal(0, 0.05, (12, 30, 3)).astype(np.float32)   # full rank: T − 1 = 11 after centring
    rig, report = fit_pca_rig(verts, PcaConfig(num_targets=50))
    assert rig.num_targets == 11
    assert report.max_mm < 1e-3
    rig2, _ = fit_pca_rig(low_rank_sequence(rank=2), PcaConfig(num_targets=10))
    assert rig2.num_targets == 2  # numerical-noise components are not exported


def test_tolerance_picks_the_smallest_k() -> None:
    rng = np.random.default_rng(2)
    shapes = rng.normal(0, 1, (4, 60, 3))
    shapes /= np.sqrt((shapes ** 2).sum(-1).mean(-1))[:, None, None]        # unit RMS per shape (metres)
    coef = rng.normal(0, 1, (80, 4)) * np.array([10e-3, 3e-3, 1e-3, 0.1e-3])  # decaying amplitudes
    coef -= coef.mean(0)
    verts = np.tensordot(coef, shapes, axes=1).astype(np.float32)
    picked = []
    for tol in (20.0, 5.0, 1.5, 0.05):
        rig, report = fit_pca_rig(verts, PcaConfig(tolerance_mm=tol, max_error_mm=None))
        assert report.rms_mm <= tol
        if rig.num_targets > 1:  # one fewer would not have met the tolerance
            _, fewer = fit_pca_rig(verts, PcaConfig(num_targets=rig.num_targets - 1))
            assert fewer.rms_mm > tol
        picked.append(rig.num_targets)
    assert picked == sorted(picked) and picked[-1] == 4


def test_max_error_criterion_adds_targets() -> None:
    verts = low_rank_sequence(rank=4, seed=3)
    rms_only, a = fit_pca_rig(verts, PcaConfig(tolerance_mm=100.0, max_error_mm=None))
    with_max, b = fit_pca_rig(verts, PcaConfig(tolerance_mm=100.0, max_error_mm=0.01))
    assert rms_only.num_targets == 1
    assert b.max_mm <= 0.01 and with_max.num_targets == 4


def test_normalized_weights_span_zero_to_one_and_keep_the_shapes() -> None:
    rng = np.random.default_rng(4)
    rig = BlendShapeRig(mean=rng.normal(size=(10, 3)).astype(np.float32),
                        targets=rng.normal(size=(3, 10, 3)).astype(np.float32),
                        weights=(rng.normal(size=(7, 3)) * [1, 5, 0]).astype(np.float32))  # last track constant
    norm = normalize_weights(rig)
    assert norm.weights[:, :2].min(0).tolist() == [0, 0] and norm.weights[:, :2].max(0).tolist() == [1, 1]
    assert (norm.weights[:, 2] == 0).all()
    np.testing.assert_allclose(norm.reconstruct(), rig.reconstruct(), atol=1e-5)
    fitted, _ = fit_pca_rig(low_rank_sequence(), PcaConfig(num_targets=3))
    assert (fitted.weights.min(0) == 0).all() and (fitted.weights.max(0) == 1).all()


def test_measure_rig_checks_sizes_and_inputs_are_validated() -> None:
    verts = low_rank_sequence()
    rig, _ = fit_pca_rig(verts, PcaConfig(num_targets=2))
    with pytest.raises(ValueError, match="rig is for T=40"):
        measure_rig(verts[:5], rig)
    with pytest.raises(ValueError, match=r"\[T, V, 3\]"):
        fit_pca_rig(verts[..., :2])
    with pytest.raises(ValueError, match="num_targets must be >= 1"):
        PcaConfig(num_targets=0)
    with pytest.raises(ValueError, match="method"):
        PcaConfig(method="svd")  # type: ignore[arg-type]


def test_memory_mapped_input(tmp_path) -> None:
    verts = low_rank_sequence(frames=150, rank=3)    # > one chunk of frames
    np.save(tmp_path / "v.npy", verts)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    rig, report = fit_pca_rig(mapped, PcaConfig(num_targets=3))
    assert report.max_mm < 1e-3
