#!/usr/bin/env bash
# The GPU check: the 2D backends and the whole pipeline, results under $OUT.
#
#   tools/gpu_check.sh --prepare   here (CPU machine): stages the 2D networks' source files (the mirror's
#                                  TF.js/TFLite weights, ~47 MiB: the built ONNX + torch files, ~190 MiB, are
#                                  over the device tool's 64 MiB), the photos and the demo video the check
#                                  reads, and the wheels the pipeline needs that the GPU image lacks (pyzmq,
#                                  mcap, ...), in .device/ (gitignored, never committed). The GPU machine
#                                  builds the networks itself (`realtime models build`, seconds) and needs
#                                  neither ../shared nor a package index (tflite travels as a wheel).
#   tools/gpu_check.sh backends    on the GPU machine, repo root, carrying .device: the gpu-marked tests of
#                                  tests/test_backends_gpu.py, then tools/bench_backends.py on CUDA (torch
#                                  FP16 with CUDA graphs, torch eager, TensorRT when installed, onnxruntime
#                                  CPU; keypoint networks at batches 1..64, detectors at batch 1; a 4-person
#                                  frame), ~3 minutes on an H200.
#   tools/gpu_check.sh pipeline    the same machine: tools/bench_pipeline.py on the demo video with the GPU
#                                  backend: unpaced (the 60 fps / p95 33 ms target of issue 4), paced like a
#                                  camera (looping the clip), and 4 sources at once with [runtime]
#                                  batch_wait_ms 0 and 5, ~4 min.
#   tools/gpu_check.sh             both, in the order a short lease wants: the unpaced pipeline, the backend
#                                  table, the gpu tests, then the paced and four-source runs; DEADLINE=seconds
#                                  (default 540) caps the whole and skips what no longer fits.
# Logs and JSON go to $OUT (default out/gpu_check).
set -uo pipefail
cd "$(dirname "$0")/.."
STAGE=.device/gpu_check
PHOTOS="p1.jpg p2.jpg p3.jpg golf.jpg ski.jpg singer.jpg apink1.jpg apink2.jpg"
MODELS="movenet-lightning movenet-thunder efficientpose cpm movenet-multipose nanodet centernet blazepose-detector"
DEMO=deepstream_Retail02_short.mp4

if [[ "${1:-}" == "--prepare" ]]; then
    set -e
    PY=${PYTHON:-.venv/bin/python}
    SHARED=${REALTIME_SHARED:-../shared}
    rm -rf "$STAGE"
    mkdir -p "$STAGE/shared/models" "$STAGE/shared/data/images/photos"
    # each network's source files in the mirror (registry paths), checked by the GPU machine's build
    $PY - "$STAGE/shared/models" $MODELS <<'PYEOF'
import shutil, sys
from pathlib import Path
from realtime.pose2d.models import model_spec, models_dir
for name in sys.argv[2:]:
    spec = model_spec(name)
    for rel in (spec.file, *(w[0] for w in spec.weights)):
        (Path(sys.argv[1]) / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(models_dir() / rel, Path(sys.argv[1]) / rel)
PYEOF
    for p in $PHOTOS; do cp "$SHARED/data/images/photos/$p" "$STAGE/shared/data/images/photos/"; done
    mkdir -p "$STAGE/shared/data/video" "$STAGE/wheels"
    cp "$SHARED/data/video/$DEMO" "$STAGE/shared/data/video/"
    # Python 3.12 x86-64 wheels of what the GPU image lacks (its README: scipy, msgpack, opencv are there).
    for w in pyzmq mcap zstandard lz4 python-osc tflite; do
        $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform any -d "$STAGE/wheels" "$w"
    done
    du -sh "$STAGE"
    echo "prepared $STAGE; on the GPU machine run: bash tools/gpu_check.sh   (carry: .device)"
    exit 0
fi

OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT" engines/models
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ -d "$STAGE" ]]; then
    export REALTIME_SHARED="$PWD/$STAGE/shared" REALTIME_MODELS_DIR="$PWD/$STAGE/shared/models"
fi
START=$SECONDS
DEADLINE=${DEADLINE:-540}
left() {  # seconds left before DEADLINE, capped at $1
    local l=$((DEADLINE - (SECONDS - START)))
    (( l > $1 )) && l=$1
    echo $l
}

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
} 2>&1 | tee "$OUT/env.txt"

if [[ -d "$STAGE/wheels" ]] && ! $PY -c "import zmq, mcap, tflite, pythonosc" 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$STAGE"/wheels/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
WHAT=${1:-all}
status=0
if [[ -n "${REALTIME_MODELS_DIR:-}" ]]; then  # build the networks from the staged sources (seconds)
    $PY -m realtime models build --kinds onnx,torch $MODELS 2>&1 | tee "$OUT/models_build.txt"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "models build failed"; exit 1; }
fi

VIDEO="$STAGE/shared/data/video/$DEMO"
[[ -f "$VIDEO" ]] || VIDEO=demo
BACKEND=${BACKEND:-torch}
bench() {  # name, time cap, then bench_pipeline.py arguments
    local name=$1 cap; cap=$(left "$2"); shift 2
    (( cap < 30 )) && { echo "$name: skipped (deadline)"; return; }
    echo "pipeline $name: $*" >&2
    timeout "$cap" $PY tools/bench_pipeline.py --backend "$BACKEND" --workers 4 --camera-pitch 19.9 "$@" \
        --json > "$OUT/pipeline_$name.json" 2> "$OUT/pipeline_$name.err"
    local rc=$?
    $PY - "$OUT/pipeline_$name.json" "$name" <<'PYEOF' | tee -a "$OUT/pipeline.txt"
import json, sys
r = json.load(open(sys.argv[1])); t = r["latency_ms"]["total"]
print(f"{sys.argv[2]:<18} fps {r['processed_fps']:6.1f}  people {r['people_per_frame']:.2f}  capture->publish p50 "
      f"{t['p50']:.1f} p95 {t['p95']:.1f} p99 {t['p99']:.1f} ms  frames/batch {r.get('frames_per_2d_batch')}  cpu {r['cpu_percent']}")
PYEOF
    [[ -s "$OUT/pipeline_$name.json" ]] || echo "$name: no result (rc $rc)"
    [[ $rc -eq 0 ]] || { status=1; tail -5 "$OUT/pipeline_$name.err"; }
}
gpu_tests() {
    local cap; cap=$(left 150)
    (( cap < 30 )) && { echo "gpu tests: skipped (deadline)"; return; }
    timeout "$cap" $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_backends_gpu.py -rA 2>&1 | tee "$OUT/pytest.txt"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
}
backend_table() {
    local cap; cap=$(left 200)
    (( cap < 30 )) && { echo "backend table: skipped (deadline)"; return; }
    timeout "$cap" $PY tools/bench_backends.py --out "$OUT/bench_backends.json" \
        --backends torch,torch-eager,tensorrt,onnxruntime --models movenet-lightning,movenet-multipose,movenet-thunder,efficientpose,cpm \
        --batches 1,4,16,64 --threads 8 --repeats 30 --max-seconds 0.5 --frame-people 4 2>&1 | tee "$OUT/bench_backends.txt"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
}
pipeline_runs() {  # the paced and four-source runs
    bench paced 90 --source "$VIDEO" --frames 600 --loop
    sed 's/^batch_wait_ms = .*/batch_wait_ms = 5.0/' config.toml > "$OUT/wait5.toml"
    bench four_wait0 90 --source "$VIDEO" --source "$VIDEO" --source "$VIDEO" --source "$VIDEO" --frames 600 --loop
    bench four_wait5 90 --config "$OUT/wait5.toml" --source "$VIDEO" --source "$VIDEO" --source "$VIDEO" \
        --source "$VIDEO" --frames 600 --loop
}

case "$WHAT" in
    backends) gpu_tests; backend_table ;;
    pipeline) bench unpaced 120 --source "$VIDEO" --frames 600 --no-pace; pipeline_runs ;;
    all) bench unpaced 120 --source "$VIDEO" --frames 600 --no-pace; backend_table; gpu_tests; pipeline_runs ;;
    *) echo "usage: $0 [--prepare | backends | pipeline | all]"; exit 2 ;;
esac
echo "gpu_check: $((SECONDS - START)) s"
exit $status
