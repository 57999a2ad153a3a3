#!/usr/bin/env bash
# The GPU checks in one short run (about 6 minutes on an H200): the CUDA tests, then the GPU
# benchmarks. Run from the repository root on a machine with a CUDA GPU and a CUDA build of
# PyTorch; every result goes under $OUT (default out/gpu): nvidia-smi.txt, cuda_tests.txt,
# embed_step.txt, ttq_c.txt (+ ttq_c/results.json), ttq_a.txt (+ ttq_a/results.json and plot),
# get3d_step.txt.
#
#     OUT=out/gpu bash benchmarks/gpu.sh
#
# It runs i2s from the source tree (PYTHONPATH=src), so nothing needs installing where torch,
# numpy, pillow, safetensors, click, tqdm, imageio, matplotlib, scipy and pytest are present;
# trimesh (3D tests) and hypothesis (hostile tests, not run here) may need carrying.
# Each step has its own time limit, and a failing step does not stop the next one.
set -u
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
    echo "   exit $? after $((SECONDS - t0)) s; last lines:"
    tail -n 5 "$OUT/$name.txt" | sed 's/^/   /'
}

nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
"$py" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" \
    | tee -a "$OUT/nvidia-smi.txt"
step cuda_tests 150 "$py" -m pytest -m cuda -p no:cacheprovider -q -o addopts="" \
    tests/test_cuda.py tests/get3d/test_dmtet.py tests/get3d/test_render.py
step embed_step 60 "$py" benchmarks/embed_step.py --device cuda --resolutions 256 1024
step ttq_c 60 "$py" benchmarks/time_to_quality.py --part c --device cuda --resolution 1024 \
    --timed-steps 10 --out "$OUT/ttq_c"
step ttq_a 150 "$py" benchmarks/time_to_quality.py --part a --device cuda \
    --recipes paper,fast,i2s++ --images 2 --out "$OUT/ttq_a"
step get3d_step 60 "$py" benchmarks/get3d_step.py --device cuda
