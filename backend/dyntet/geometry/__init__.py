"""Tetrahedral grid and Marching Tetrahedra with a fixed topology."""
