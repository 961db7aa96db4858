#!/usr/bin/env bash
# The GPU check of the 2D backends, in one command that finishes in a few minutes.
#
#   tools/gpu_check.sh --prepare   on this (CPU) machine: builds the converted models into engines/models and
#                                  stages what the GPU machine cannot fetch in .device/ (gitignored, never
#                                  committed): the few ../shared files the check reads and the pure-python
#                                  `tflite` wheel (the GPU image has flatbuffers but not tflite).
#   tools/gpu_check.sh             on the GPU machine (repo root, carrying .device and engines/models):
#                                  runs the gpu-marked tests of tests/test_backends_gpu.py, then
#                                  tools/bench_backends.py --json on CUDA, writing everything under $OUT
#                                  (or out/gpu_check when OUT is unset).
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare" ]]; then
    set -e
    PY=${PYTHON:-.venv/bin/python}
    SHARED=${REALTIME_SHARED:-../shared}
    $PY -m realtime models build cpm detector
    rm -rf .device/shared .device/whl
    mkdir -p .device/shared/models/cpm_pefm .device/shared/models/blazepose .device/shared/data/images .device/whl
    cp "$SHARED/models/cpm_pefm/model.tflite" .device/shared/models/cpm_pefm/
    cp "$SHARED/models/blazepose/pose_detection.tflite" .device/shared/models/blazepose/
    cp -r "$SHARED/data/images/photos" .device/shared/data/images/
    $PY -m pip download -q --no-deps --only-binary=:all: -d .device/whl "tflite==2.18.0"
    du -sh .device engines/models
    echo 'prepared; on the GPU machine run: bash tools/gpu_check.sh   (carry: .device engines/models)'
    exit 0
fi

OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [[ -d .device/shared ]]; then
    export REALTIME_SHARED="$PWD/.device/shared" REALTIME_MODELS_DIR="$PWD/.device/shared/models"
fi
if compgen -G ".device/whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/gpu_check_site .device/whl/*.whl \
        && export PYTHONPATH="/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv || true
    $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
} 2>&1 | tee "$OUT/env.txt"

status=0
timeout 240 $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_backends_gpu.py -rA 2>&1 | tee "$OUT/pytest.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

timeout 240 $PY tools/bench_backends.py --out "$OUT/bench_backends.json" \
    --backends torch,torch-eager,tensorrt,onnxruntime --models cpm,detector --batches 1,2,4,8,16,32,64 \
    --threads 8 --repeats 50 --max-seconds 1.5 --frame-people 4 2>&1 | tee "$OUT/bench_backends.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
exit $status
