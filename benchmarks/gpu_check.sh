#!/usr/bin/env bash
# The GPU path of mmlesson, measured once: at most 8 minutes on one GPU, everything written to OUTDIR.
#
#   benchmarks/gpu_check.sh OUTDIR                              # python from PATH
#   PYTHON=.venv/bin/python benchmarks/gpu_check.sh OUTDIR      # another interpreter
#   GPU_CHECK_TOY=1 GPU_CHECK_DEVICE=cpu benchmarks/gpu_check.sh OUTDIR   # every workload at toy size on the CPU
#
# Steps, each with its own time limit (a failing step is recorded and the next one runs):
#   pytest_gpu         pytest -m gpu (every CUDA test of tests/)
#   train_throughput   benchmarks/train_throughput.py --workload cremad-shape: fp32 and bf16 samples/s,
#                      peak memory, fraction of the device's bf16 peak (224x224 frames, 257x188
#                      spectrograms, full-width ResNet-18 x2, batch 64)
#   loader_throughput  benchmarks/loader_throughput.py on a fabricated CREMA-D-shaped cache (7,442 clips,
#                      6,698 of them train): the split resident on the device against per-sample files,
#                      with and without a training step; the cache is kept for the next step
#   train_cremad       mmlesson train, joint, on that cache: 10 epochs, extrapolated to 100
#   runner_kK          the runner with K = 1, 2, 4 SynthAV workers per GPU (benchmarks/grid_throughput.py)
# Output: OUTDIR/gpu_check.json (every figure), OUTDIR/summary.txt, OUTDIR/logs/ (each step's output),
# OUTDIR/raw/ (each step's own JSON). Without a CUDA device it prints one line and measures nothing.
#
# Environment: PYTHON (default: python), GPU_CHECK_DEVICE (cuda; cpu needs GPU_CHECK_TOY=1),
# GPU_CHECK_TOY (1: tiny sizes, seconds per step), GPU_CHECK_PEAK_TFLOPS (the device's dense bf16 peak,
# where train_throughput.py's table does not know it), GPU_CHECK_RUNNER_K (default "1 2 4"; toy "1"),
# GPU_CHECK_WORK (scratch directory for the fabricated data, about 6 GB; default a temporary one, deleted).
set -u

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: benchmarks/gpu_check.sh OUTDIR (a folder for gpu_check.json and summary.txt)" >&2
    exit 2
fi
absolute() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
OUT=$(absolute "$1")
PYTHON=${PYTHON:-python}
case $PYTHON in */*) PYTHON=$(absolute "$PYTHON") ;; esac
DEVICE=${GPU_CHECK_DEVICE:-cuda}
TOY=${GPU_CHECK_TOY:-0}
COMMAND="$0 $*"
cd "$(dirname "$0")/.." || exit 1  # the repository root: benchmarks/ and tests/ are read from here

case $DEVICE in
    cuda) ;;
    cpu) if [ "$TOY" != 1 ]; then
             echo "gpu_check: GPU_CHECK_DEVICE=cpu needs GPU_CHECK_TOY=1 (full size on the CPU takes hours)" >&2
             exit 2
         fi ;;
    *) echo "gpu_check: GPU_CHECK_DEVICE must be cuda or cpu, got '$DEVICE'" >&2; exit 2 ;;
esac

# one interpreter start: torch and mmlesson importable, CUDA present (exit 3 if not), the device's name
PROBE='import sys, torch, mmlesson
if sys.argv[1] == "cuda" and not torch.cuda.is_available(): sys.exit(3)
print(torch.cuda.get_device_name(0) if sys.argv[1] == "cuda" else "cpu", torch.__version__, sep="|")'
PROBED=$("$PYTHON" -c "$PROBE" "$DEVICE" 2>/dev/null)
case $? in
    0) ;;
    3) echo "no CUDA device: nothing measured"; exit 0 ;;
    *) echo "gpu_check: $PYTHON cannot import torch and mmlesson; give the right one as PYTHON=..." >&2; exit 2 ;;
esac
if [ "$DEVICE" = cuda ]; then  # one GPU: the first visible one
    export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-0}
    export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES%%,*}
else  # the CPU only, also for the runs that pick their device themselves
    export CUDA_VISIBLE_DEVICES=
fi

if [ "$TOY" = 1 ]; then
    THROUGHPUT=(--batch-size 4 --image-size 32 --spec-shape 33 24 --width 4 --steps 2)
    LOADER=(--clips 96 --size 32 --width 4 --epochs 1 --workers 2)
    TRAIN=(--width 4 --epochs 2 --batch-size 16)
    RUNNER=(--runs 2 --epochs 1 --data-knob train_size=96 --data-knob val_size=48 --data-knob test_size=48
            --data-knob spec_bins=16 --data-knob spec_steps=16 --data-knob frame_size=16)
    KS=${GPU_CHECK_RUNNER_K:-1}
else
    THROUGHPUT=(--steps 20)
    LOADER=(--clips 7442 --epochs 2)
    TRAIN=(--width 64 --epochs 10 --batch-size 64)
    RUNNER=(--runs 8 --epochs 4)
    KS=${GPU_CHECK_RUNNER_K:-1 2 4}
fi
PEAK=(${GPU_CHECK_PEAK_TFLOPS:+--peak-tflops "$GPU_CHECK_PEAK_TFLOPS"})

mkdir -p "$OUT/logs" "$OUT/raw" || exit 1
rm -f "$OUT/raw/"* "$OUT/logs/"* "$OUT/gpu_check.json" "$OUT/summary.txt"  # never mix two runs' figures
if [ -n "${GPU_CHECK_WORK:-}" ]; then
    WORK=$(absolute "$GPU_CHECK_WORK")
    mkdir -p "$WORK" || exit 1
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmlesson-gpu-check.XXXXXX") || exit 1
    trap 'rm -rf "$WORK"' EXIT
fi

BUDGET=480  # seconds for everything; each step gets its own limit, cut to what is left of the budget
printf 'step\tstatus\tstarted\tended\tlimit\n' > "$OUT/raw/steps.tsv"

# step NAME LIMIT COMMAND...: run COMMAND with a time limit, output to logs/NAME.log, outcome to steps.tsv
step() {
    local name=$1 limit=$2 status
    shift 2
    local left=$((BUDGET - 10 - SECONDS))  # 10 s kept for the summary
    [ "$limit" -gt "$left" ] && limit=$left
    local started
    started=$(date +%s.%N)
    if [ "$limit" -lt 5 ]; then
        status="skipped: out of time"
    else
        echo "[$(date +%T)] $name (at most $limit s)"
        timeout -k 5 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
        local code=$?
        case $code in
            0) status=ok ;;
            124 | 137) status="timed out after $limit s" ;;
            *) status="failed (exit $code)" ;;
        esac
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$started" "$(date +%s.%N)" "$limit" >> "$OUT/raw/steps.tsv"
}

step pytest_gpu 100 "$PYTHON" -m pytest -q -m gpu tests -p no:cacheprovider
step train_throughput 60 "$PYTHON" benchmarks/train_throughput.py --workload cremad-shape --device "$DEVICE" \
    --frames 1 "${THROUGHPUT[@]}" "${PEAK[@]}" --json "$OUT/raw/train_throughput.json"
step loader_throughput 150 "$PYTHON" benchmarks/loader_throughput.py --device "$DEVICE" --model-step \
    "${LOADER[@]}" --workdir "$WORK/data" --json "$OUT/raw/loader_throughput.json"
rm -rf "$WORK/train_cremad"  # a complete run there would be read back, not trained
step train_cremad 120 "$PYTHON" -m mmlesson train --data cremad --root "$WORK/data/cache" --device "$DEVICE" \
    "${TRAIN[@]}" --progress off --out "$WORK/train_cremad"
cp "$WORK/train_cremad/metrics.json" "$OUT/raw/train_cremad.json" 2>/dev/null
rm -rf "$WORK/data"  # the fabricated data are several GB
for k in $KS; do
    step "runner_k$k" 40 "$PYTHON" benchmarks/grid_throughput.py --runner-only --workers "$k" --per-gpu "$k" \
        "${RUNNER[@]}" --json "$OUT/raw/runner_k$k.json"
done

"$PYTHON" benchmarks/gpu_check_report.py "$OUT" --device-info "$PROBED" --toy "$TOY" --command "$COMMAND" \
    --seconds "$SECONDS"
