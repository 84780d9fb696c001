"""The SDF signs that decide the mesh topology, kept between training steps instead of recomputed.

Every step needs the SDF of all V grid vertices only to find which edges cross the surface, and the
topology those signs give. Both change slowly: one Adam step moves the SDF by far less than a grid cell.
So f1 is evaluated on the whole grid every ``refresh_every`` steps; in between, only on the band of
vertices that were within ``band_cells`` grid cells of the surface at the last refresh (the only ones
whose sign can plausibly flip), and the topology is rebuilt only when some sign actually changed —
from the tets and edges that touch the band (or were cut at the refresh) alone, since every other
corner's sign is frozen until the next refresh; that gives the whole grid's topology exactly.
``refresh_every = 1`` is the reference: the whole grid every step, exactly as without a cache.
"""

from __future__ import annotations

import torch

from dyntet.geometry.marching import Candidates, MarchingTopology, candidates, topology
from dyntet.model.dyntet import DynTet


class SurfaceCache:
    def __init__(self, refresh_every: int = 1, band_cells: float = 4.0) -> None:
        if refresh_every < 1:
            raise ValueError(f"refresh_every must be >= 1, got {refresh_every}")
        self.refresh_every = refresh_every
        self.band_cells = band_cells
        self._calls = 0
        self._sdf: torch.Tensor | None = None
        self._band: torch.Tensor | None = None
        self._signs: torch.Tensor | None = None
        self._topology: MarchingTopology | None = None
        self._within: Candidates | None = None

    @torch.no_grad()
    def sdf_and_topology(self, model: DynTet) -> tuple[torch.Tensor, MarchingTopology]:
        """SDF float [V] of every grid vertex (fresh on the band, from the last refresh elsewhere) and
        the marching-tets topology of its signs."""
        refresh = self._sdf is None or self._calls % self.refresh_every == 0
        if refresh:
            sdf = model.sdf()
            self._within = None
            if self.refresh_every > 1:
                band = sdf.abs() < self.band_cells / model.grid.resolution
                self._band = band.nonzero()[:, 0]
                self._within = candidates(model.grid, sdf, band)
        else:
            sdf = self._sdf.clone()
            sdf[self._band] = model.geometry.sdf_elastic(model.grid_vertices[self._band])[0]
            if self._within is None:  # restored from a checkpoint between refreshes
                free = torch.zeros(len(sdf), dtype=torch.bool, device=sdf.device)
                free[self._band] = True
                self._within = candidates(model.grid, self._sdf, free)
        self._calls += 1
        signs = sdf < 0
        if self._topology is None or not torch.equal(signs, self._signs):
            self._topology = topology(model.grid, sdf, None if refresh else self._within)
            self._signs = signs
        self._sdf = sdf
        return sdf, self._topology

    def state_dict(self) -> dict:
        """What a resumed run needs to continue exactly as an uninterrupted one (checkpointed)."""
        return {"calls": self._calls, "sdf": self._sdf, "band": self._band}

    def load_state_dict(self, state: dict) -> None:
        self._calls = int(state["calls"])
        self._sdf, self._band = state["sdf"], state["band"]
        self._signs = self._topology = self._within = None  # rebuilt from the restored SDF on the next call
