"""A tiny training configuration shared by the training tests (seconds per run on a CPU)."""

TINY = {
    "iterations": 6, "minutes": 0, "render_size": 64, "batch_size": 2, "face_samples": 256, "sdf_init_steps": 30,
    "checkpoint_every": 3, "preview_every": 3, "log_every": 1,
    "model.geometry.grid_resolution": 16, "model.geometry.hidden_dim": 16,
    "model.geometry.expression_feature_dim": 16, "model.geometry.expression_window": 9,
    "model.appearance.hash_levels": 4, "model.appearance.hash_log2_table": 10,
    "model.appearance.hash_max_resolution": 64, "model.appearance.hidden_dim": 16,
    "model.appearance.num_layers": 2, "model.light.cube_resolution": 8,
}
