#!/usr/bin/env bash
# The GPU check, one command on any GPU machine (which may have CUDA, PyTorch and Lightning but
# no Rust toolchain): the tutorial on the synthetic data — fulmen on wgpu in 32-true and
# 16-mixed and bf16-mixed (where the adapter has them), fulmen on the CPU, and PyTorch Lightning on the same
# GPU in the same precisions — one epoch each, img/s side by side.
# Usage: bash benches/gpu_check/run.sh [DIR]   DIR holds cifar-wgpu[.xz] from build.sh and,
#        optionally, cifar-cuda[.xz] from build-cuda.sh
#        (default target/gpu-check). GPU_CHECK_EPOCHS sets the epochs (default 1);
#        GPU_CHECK_ARGS adds flags to fulmen's runs (`--trainer.fast_dev_run 1` to try the script quickly).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/../../target/gpu-check}
epochs=${GPU_CHECK_EPOCHS:-1}
work=$(mktemp -d)
python=${PYTHON:-python3}

for packed in "$dir"/*.xz; do
    [ -e "$packed" ] && xz -dkc "$packed" > "$work/$(basename "${packed%.xz}")" && chmod +x "$work/$(basename "${packed%.xz}")"
done
for plain in "$dir"/cifar-*; do
    case "$plain" in *.xz) ;; *) [ -e "$plain" ] && cp "$plain" "$work/" ;; esac
done

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
declare -A rate

# fulmen: the example prints "Trained N epochs (S steps) in T s (R img/s, validation included; C% CPU, peak RSS M MB)".
fulmen() { # name binary accelerator precision
    local log="$work/$1.log"
    if "$2" fit --data.synthetic true --trainer.max_epochs "$epochs" --trainer.accelerator "$3" --trainer.precision "$4" \
        --data.num_workers 4 --trainer.default_root_dir "$work/$1" ${GPU_CHECK_ARGS:-} >"$log" 2>&1; then
        rate[$1]=$(sed -n 's/.*(\([0-9.]*\) img\/s, validation included.*/\1/p' "$log" | tail -1)
        grep -m1 '^GPU available' "$log"
    else
        rate[$1]="failed"
        echo "$1 failed:"; tail -5 "$log"
    fi
}

lightning() { # name precision accelerator
    local log="$work/$1.log"
    if "$python" "$here/lightning_synthetic.py" "$2" "$3" >"$log" 2>&1; then
        rate[$1]=$(sed -n 's/^img\/s \([0-9.]*\)$/\1/p' "$log")
    else
        rate[$1]="failed"
        echo "$1 failed:"; tail -5 "$log"
    fi
}

wgpu_bin="$work/cifar-wgpu"
if [ -x "$wgpu_bin" ]; then
    fulmen fulmen-cpu-32-true "$wgpu_bin" cpu 32-true
    fulmen fulmen-wgpu-32-true "$wgpu_bin" wgpu 32-true
    fulmen fulmen-wgpu-16-mixed "$wgpu_bin" wgpu 16-mixed
    fulmen fulmen-wgpu-bf16-mixed "$wgpu_bin" wgpu bf16-mixed
else
    echo "no cifar-wgpu in $dir: run benches/gpu_check/build.sh where Rust is installed"
fi
cuda_bin="$work/cifar-cuda"
if [ -x "$cuda_bin" ]; then
    for p in 32-true 16-mixed bf16-mixed; do
        fulmen "fulmen-cuda-$p" "$cuda_bin" cuda "$p"
    done
fi
for p in 32-true 16-mixed bf16-mixed; do
    lightning "lightning-gpu-$p" "$p" gpu
done

ratio() { # a b
    case "${rate[$1]:-}${rate[$2]:-}" in *failed*|"") echo "-" ;; *) awk -v a="${rate[$1]}" -v b="${rate[$2]}" 'BEGIN { printf "%.2f", a / b }' ;; esac
}
printf '\n%-26s %10s %12s %14s\n' "job ($epochs epoch, synthetic)" "img/s" "vs CPU" "vs Lightning"
for p in 32-true 16-mixed bf16-mixed; do
    printf '%-26s %10s %12s %14s\n' "fulmen wgpu $p" "${rate[fulmen-wgpu-$p]:--}" "$(ratio fulmen-wgpu-$p fulmen-cpu-32-true)" "$(ratio fulmen-wgpu-$p lightning-gpu-$p)"
done
if [ -x "$cuda_bin" ]; then
    for p in 32-true 16-mixed bf16-mixed; do
        printf '%-26s %10s %12s %14s\n' "fulmen cuda $p" "${rate[fulmen-cuda-$p]:--}" "$(ratio fulmen-cuda-$p fulmen-cpu-32-true)" "$(ratio fulmen-cuda-$p lightning-gpu-$p)"
    done
fi
printf '%-26s %10s\n' "fulmen cpu 32-true" "${rate[fulmen-cpu-32-true]:--}"
for p in 32-true 16-mixed bf16-mixed; do
    printf '%-26s %10s %12s\n' "Lightning gpu $p" "${rate[lightning-gpu-$p]:--}" "$(ratio lightning-gpu-$p fulmen-cpu-32-true)"
done
