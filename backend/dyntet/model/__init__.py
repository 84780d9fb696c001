"""The DynTet model: geometry networks f1/f2, appearance G, light, losses."""
