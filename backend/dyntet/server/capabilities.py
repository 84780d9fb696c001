"""What this backend can compute with: device and the implementations the jobs will use.

Finding out needs ``import torch`` (about a second, hundreds of MB), which the server process itself
avoids: :class:`CapabilityProbe` runs ``python -m dyntet.server.capabilities`` once in the
background, which prints one JSON object. Until it answers, ``hello`` reports ``{"ready": false}``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import threading
from typing import Any

log = logging.getLogger("dyntet.server")

PROBE_TIMEOUT_S = 120.0


def probe() -> dict[str, Any]:
    """Device, library versions and chosen backends (imports torch)."""
    info: dict[str, Any] = {"ready": True, "python": sys.version.split()[0]}
    try:
        import torch
    except ImportError as exc:
        return {**info, "device": None, "error": f"torch is not importable: {exc}", "backends": {}}
    cuda = torch.cuda.is_available()
    info.update(torch=torch.__version__, cuda=torch.version.cuda if cuda else None,
                device="cuda:0" if cuda else "cpu",
                device_name=torch.cuda.get_device_name(0) if cuda else _cpu_name())
    info["backends"] = {"raster": _raster_backend(cuda),
                        "hash_grid": _hash_grid_backend(cuda)}
    info["optional"] = {name: importlib.util.find_spec(name) is not None for name in ("nvdiffrast", "tinycudann")}
    return info


def _raster_backend(cuda: bool) -> str:
    try:
        from dyntet.render.raster import resolve_backend
        return resolve_backend("auto")
    except Exception:  # the renderer may be absent or broken in a partial build: report what we can
        return "nvdiffrast" if cuda and importlib.util.find_spec("nvdiffrast") else "cpu"


def _hash_grid_backend(cuda: bool) -> str:
    if _tcnn_available(cuda):
        return "tinycudann"
    return "numba" if importlib.util.find_spec("numba") is not None else "torch"


def _tcnn_available(cuda: bool) -> bool:
    try:
        from dyntet.nn.hashgrid_tcnn import is_available
        return bool(is_available())
    except Exception:
        return cuda and importlib.util.find_spec("tinycudann") is not None


def _cpu_name() -> str:
    import os
    import platform
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} threads)"


class CapabilityProbe:
    """Runs :func:`probe` in a subprocess on a background thread; ``result`` is ready when it returns."""

    def __init__(self, enabled: bool = True):
        self._result: dict[str, Any] = {"ready": False}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if not enabled:
            self._result = {"ready": True, "device": None, "backends": {}, "note": "probe disabled"}

    def start(self) -> None:
        if self._result.get("ready"):
            return
        self._thread = threading.Thread(target=self._run, name="dyntet-probe", daemon=True)
        self._thread.start()

    @property
    def result(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._result)

    def _run(self) -> None:
        try:
            done = subprocess.run([sys.executable, "-m", "dyntet.server.capabilities"], capture_output=True,
                                  text=True, timeout=PROBE_TIMEOUT_S, check=False)
            result = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {
                "ready": True, "device": None, "backends": {}, "error": done.stderr.strip()[-500:]}
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
            result = {"ready": True, "device": None, "backends": {}, "error": str(exc)}
        with self._lock:
            self._result = result
        log.info("device: %s; backends: %s", result.get("device"), result.get("backends"))


if __name__ == "__main__":
    print(json.dumps(probe()))
