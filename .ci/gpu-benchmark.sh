#!/usr/bin/env bash
# The GPU rows of docs/performance.md (issue 27, item 5). NOT RUN YET: no GPU has been lent to this project.
#
#   .ci/gpu-benchmark.sh carry      here: copies the pure-Python packages a GPU machine lacks (gymnax, gymnasium,
#                                   Farama-Notifications) from this virtual environment into .gpu-site/ (.gitignore)
#   .ci/gpu-benchmark.sh run OUT    there, with its own python3, jax[cuda], optax, flax, six, flatbuffers, pillow,
#                                   matplotlib, seaborn, pyyaml: the throughput table at four sizes, under 6 minutes
#                                   (cut at 330 s); OUT/gpu-benchmark.json, OUT/gpu-benchmark.log
#
# The device tool's call: run(command="bash .ci/gpu-benchmark.sh run $OUT", carry=[".gpu-site"], timeout_s=420).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
carry)
    python="${PYTHON:-.venv/bin/python}"
    site="$("$python" -c 'import gymnax, os; print(os.path.dirname(os.path.dirname(gymnax.__file__)))')"
    rm -rf .gpu-site && mkdir .gpu-site
    for package in gymnax gymnasium farama_notifications; do cp -r "$site/$package" .gpu-site/; done
    find .gpu-site -name __pycache__ -prune -exec rm -rf {} +
    du -sh .gpu-site ;;
run)
    out="${2:?usage: .ci/gpu-benchmark.sh run OUT}"
    mkdir -p "$out"
    export PYTHONPATH="$PWD/.gpu-site:$PWD" PYTHONUNBUFFERED=1
    { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
      python3 -c 'import jax; print("jax", jax.__version__, jax.devices())'
      # plain idiom, options, runner at each size; 60 iterations, median of 3; no whole-process sections.
      timeout 330 python3 scripts/benchmark.py --sizes 16x256,64x64,256x256,4096x64 --repeats 3 \
          --skip extra,solve,numpy,sweep --out "$out/gpu-benchmark.json"
    } 2>&1 | tee "$out/gpu-benchmark.log" ;;
*)
    echo "usage: .ci/gpu-benchmark.sh carry | run OUT" >&2; exit 2 ;;
esac
