#!/usr/bin/env bash
# The GPU check of the 2D backends: one command, a few minutes, results under $OUT.
#
#   tools/gpu_check.sh --prepare   here (CPU machine): builds the cpm and detector models (ONNX + torch) and
#                                  stages them with the 5 photos the check reads in .device/ (gitignored,
#                                  never committed), so the GPU machine needs neither ../shared nor tflite.
#   tools/gpu_check.sh             on the GPU machine, repo root, carrying .device: runs the gpu-marked tests
#                                  of tests/test_backends_gpu.py, then tools/bench_backends.py on CUDA
#                                  (torch FP16 with CUDA graphs, torch eager, TensorRT when installed,
#                                  onnxruntime CPU; batches 1..64; detector at batch 1; a 4-person frame
#                                  through PoseEstimator2D), writing logs and JSON to $OUT (default out/gpu_check).
set -uo pipefail
cd "$(dirname "$0")/.."
STAGE=.device/gpu_check
PHOTOS="p1.jpg golf.jpg ski.jpg singer.jpg apink1.jpg"

if [[ "${1:-}" == "--prepare" ]]; then
    set -e
    PY=${PYTHON:-.venv/bin/python}
    SHARED=${REALTIME_SHARED:-../shared}
    $PY -m realtime models build cpm detector
    rm -rf "$STAGE"
    mkdir -p "$STAGE/engines/models" "$STAGE/shared/models" "$STAGE/shared/data/images/photos"
    for m in cpm detector; do
        cp engines/models/$m.onnx engines/models/$m.pt "$STAGE/engines/models/"
    done
    for p in $PHOTOS; do cp "$SHARED/data/images/photos/$p" "$STAGE/shared/data/images/photos/"; done
    du -sh "$STAGE"
    echo "prepared $STAGE; on the GPU machine run: bash tools/gpu_check.sh   (carry: .device)"
    exit 0
fi

OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT" engines/models
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ -d "$STAGE" ]]; then
    cp -n "$STAGE"/engines/models/* engines/models/
    export REALTIME_SHARED="$PWD/$STAGE/shared"
fi

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
} 2>&1 | tee "$OUT/env.txt"

status=0
timeout 150 $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_backends_gpu.py -rA 2>&1 | tee "$OUT/pytest.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

timeout 200 $PY tools/bench_backends.py --out "$OUT/bench_backends.json" \
    --backends torch,torch-eager,tensorrt,onnxruntime --models cpm,detector --batches 1,2,4,8,16,32,64 \
    --threads 8 --repeats 50 --max-seconds 1.0 --frame-people 4 2>&1 | tee "$OUT/bench_backends.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
exit $status
