# One-command entry points. Each target creates .venv when missing, installs what it needs
# (pinned CPU torch, numpy<2 for mediapipe 0.10.21), then runs. Re-runs are fast and quiet.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: test demo bench venv clean extension

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
	@$(PY) -m pip install -q --disable-pip-version-check -e ".[test]"
	@$(PY) scripts/ensure_gltf_validator.py
	@rm -f $(VENV)/.installed-* && touch $@

test: venv
	@OMP_NUM_THREADS=1 $(PY) scripts/run_tests.py

demo: venv
	@$(VENV)/bin/dyntet demo

bench: venv
	@$(PY) scripts/bench.py all

extension: venv
	@$(PY) scripts/build_extension.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
