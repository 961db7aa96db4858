# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of PyTorch (kept local on our machines); on a GPU box use a CUDA build instead.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev,torch]'
	touch $@

install: $(VENV)/.installed

# Runs the whole pipeline on the bundled demo video (a webcam when it is absent), recording to out/.
demo: $(VENV)/.installed
	$(PY) -m realtime models build
	$(PY) -m realtime run --source demo --headless --record out/demo.mcap --max-frames 600

test: $(VENV)/.installed
	$(PY) -m realtime models build
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) engines/models engines/cache out
