#!/usr/bin/env bash
# The GPU check: the 2D backends and the whole pipeline, results under $OUT.
#
#   tools/gpu_check.sh --prepare   here (CPU machine): builds every converted 2D network (ONNX + torch) and
#                                  stages them with the photos and the demo video the check reads, and the
#                                  wheels the pipeline needs that the GPU image lacks (pyzmq, mcap, ...), in
#                                  .device/ (gitignored, never committed): the GPU machine needs neither
#                                  ../shared nor tflite nor a package index.
#   tools/gpu_check.sh backends    on the GPU machine, repo root, carrying .device: the gpu-marked tests of
#                                  tests/test_backends_gpu.py, then tools/bench_backends.py on CUDA (torch
#                                  FP16 with CUDA graphs, torch eager, TensorRT when installed, onnxruntime
#                                  CPU; keypoint networks at batches 1..64, detectors at batch 1; a 4-person
#                                  frame), ~6 minutes.
#   tools/gpu_check.sh pipeline    the same machine: tools/bench_pipeline.py on the demo video with the GPU
#                                  backend: unpaced (the 60 fps / p95 33 ms target of issue 4), paced like a
#                                  camera, and 4 sources at once with [runtime] batch_wait_ms 0 and 5, ~4 min.
#   tools/gpu_check.sh             both (may need more than one call's 10 minutes: run them one by one).
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
    $PY -m realtime models build $MODELS
    rm -rf "$STAGE"
    mkdir -p "$STAGE/engines/models" "$STAGE/shared/models" "$STAGE/shared/data/images/photos"
    for m in $MODELS; do
        cp engines/models/$m.onnx engines/models/$m.pt "$STAGE/engines/models/"
    done
    for p in $PHOTOS; do cp "$SHARED/data/images/photos/$p" "$STAGE/shared/data/images/photos/"; done
    mkdir -p "$STAGE/shared/data/video" "$STAGE/wheels"
    cp "$SHARED/data/video/$DEMO" "$STAGE/shared/data/video/"
    # Python 3.12 x86-64 wheels of what the GPU image lacks (its README: scipy, msgpack, opencv are there).
    for w in pyzmq mcap zstandard lz4 python-osc; do
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
    cp -n "$STAGE"/engines/models/* engines/models/
    export REALTIME_SHARED="$PWD/$STAGE/shared"
fi

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
} 2>&1 | tee "$OUT/env.txt"

if [[ -d "$STAGE/wheels" ]] && ! $PY -c "import zmq, mcap" 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$STAGE"/wheels/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
WHAT=${1:-all}
status=0

if [[ "$WHAT" == all || "$WHAT" == backends ]]; then
    timeout 150 $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_backends_gpu.py -rA 2>&1 | tee "$OUT/pytest.txt"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

    timeout 200 $PY tools/bench_backends.py --out "$OUT/bench_backends.json" \
        --backends torch,torch-eager,tensorrt,onnxruntime --models movenet-lightning,movenet-multipose,movenet-thunder,efficientpose,cpm --batches 1,2,4,8,16,32,64 \
        --threads 8 --repeats 50 --max-seconds 1.0 --frame-people 4 2>&1 | tee "$OUT/bench_backends.txt"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
fi

if [[ "$WHAT" == all || "$WHAT" == pipeline ]]; then
    VIDEO="$STAGE/shared/data/video/$DEMO"
    [[ -f "$VIDEO" ]] || VIDEO=demo
    BACKEND=${BACKEND:-torch}
    bench() {  # name, then bench_pipeline.py arguments
        local name=$1; shift
        timeout 150 $PY tools/bench_pipeline.py --backend "$BACKEND" --workers 4 --camera-pitch 19.9 "$@" \
            --json > "$OUT/pipeline_$name.json" 2> "$OUT/pipeline_$name.err"
        local rc=$?
        $PY - "$OUT/pipeline_$name.json" "$name" <<'PYEOF' || true
import json, sys
r = json.load(open(sys.argv[1])); t = r["latency_ms"]["total"]
print(f"{sys.argv[2]:<18} fps {r['processed_fps']:6.1f}  people {r['people_per_frame']:.2f}  capture->publish p50 "
      f"{t['p50']:.1f} p95 {t['p95']:.1f} p99 {t['p99']:.1f} ms  frames/batch {r.get('frames_per_2d_batch')}  cpu {r['cpu_percent']}")
PYEOF
        [[ $rc -eq 0 ]] || { status=1; tail -5 "$OUT/pipeline_$name.err"; }
    }
    {
        bench unpaced --source "$VIDEO" --frames 600 --no-pace
        bench paced --source "$VIDEO" --frames 500
        sed 's/^batch_wait_ms = .*/batch_wait_ms = 5.0/' config.toml > "$OUT/wait5.toml"
        bench four_wait0 --source "$VIDEO" --source "$VIDEO" --source "$VIDEO" --source "$VIDEO" --frames 300
        bench four_wait5 --config "$OUT/wait5.toml" --source "$VIDEO" --source "$VIDEO" --source "$VIDEO" \
            --source "$VIDEO" --frames 300
    } 2>&1 | tee "$OUT/pipeline.txt"
fi
exit $status
