# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of PyTorch (kept local on our machines); on a GPU box use a CUDA build instead.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test bench clean blender-deps browser-deps blender-addon

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev,torch]'
	touch $@

install: $(VENV)/.installed

# Runs the whole pipeline on the bundled demo video (a webcam when it is absent), recording to out/.
# The demo camera looks down by 19.9 degrees (from its extrinsics, docs/lifting.md). The browser viewer
# is at http://127.0.0.1:8070/ while it runs (the address is printed first); then the recording's report.
# Each run replaces the last demo recording (--overwrite); `realtime run --record` never does by itself.
demo: $(VENV)/.installed
	$(PY) -m realtime models build
	$(PY) -m realtime run --source demo --camera-pitch 19.9 --headless --record out/demo.mcap --overwrite --loop --max-frames 600 --view
	$(PY) -m realtime export out/demo.mcap --format html --output out/demo.html

# Debian's Blender + its system-Python modules for tests/test_blender.py (skipped without blender).
BLENDER_DEBS := blender python3-numpy python3-zmq python3-msgpack python3-zstandard python3-lz4
blender-deps:
	@if command -v blender >/dev/null && /usr/bin/python3 -c "import numpy, zmq, msgpack, zstandard, lz4" 2>/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BLENDER_DEBS); \
	else echo "Blender tests will be skipped; to run them: sudo apt-get install -y $(BLENDER_DEBS)"; fi

# Debian's Chromium and its chromedriver for the browser tests (tests/test_viewer.py; skipped without them).
BROWSER_DEBS := chromium chromium-driver
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_DEBS); \
	else echo "Browser tests will be skipped; to run them: sudo apt-get install -y $(BROWSER_DEBS)"; fi

blender-addon: $(VENV)/.installed
	$(PY) clients/blender/build.py build/realtime_pose --zip

test: $(VENV)/.installed blender-deps browser-deps
	$(PY) -m realtime models build
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) engines/models engines/cache out
