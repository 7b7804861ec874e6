#!/usr/bin/env bash
# fulmen against PyTorch Lightning on the tutorial's whole fit, side by side on this machine: the
# cifar example (`cifar fit --data.synthetic true`, EarlyStopping + ModelCheckpoint, CSV logger)
# and lightning_fit.py (the same CNN, optimizer, callbacks and logger on 9,000/1,000 images),
# alternating which goes first, ROUNDS rounds per batch size. Two data set-ups: "memory" (both
# sides' images generated before the fit and held in memory) and "tutorial" (fulmen draws each
# image on its loader's workers, as the tutorial runs; PyTorch's are in memory as before).
# Prints each run, then per batch size and set-up the medians: fit seconds, img/s, CPU use
# during the fit (200% = both cores), peak RSS, and fulmen's speed over Lightning's.
#
# Usage: bash benches/vs_lightning/run.sh
#   env: ROUNDS (3), BATCHES ("32 128"), EPOCHS (2), SETUPS ("memory tutorial"),
#        PL_WORKERS (2, Lightning's DataLoader workers), FULMEN_ARGS (extra flags for fulmen),
#        FEATURES (cargo features of the build, default none; the build is the tests' --workspace one), LIGHTNING_VENV (a venv to reuse;
#        default target/lightning-venv, made from requirements.txt on first use).
#   Any FULMEN_* variable (FULMEN_ISA=avx2 ...) reaches fulmen's runs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rounds=${ROUNDS:-3}
batches=${BATCHES:-32 128}
epochs=${EPOCHS:-2}
setups=${SETUPS:-memory tutorial}
pl_workers=${PL_WORKERS:-2}
venv=${LIGHTNING_VENV:-$repo/target/lightning-venv}

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import lightning, psutil" 2>/dev/null; then
    echo "== making $venv (torch, lightning, psutil from PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
echo "== building the cifar example (release${FEATURES:+, features $FEATURES})"
(cd "$repo" && cargo build --quiet --release --workspace --example cifar ${FEATURES:+--features "$FEATURES"})
bin="$repo/target/release/examples/cifar"

grep -m1 'model name' /proc/cpuinfo || true
echo "cores: $(nproc); instruction sets: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512_bf16|avx512_fp16|avx512_vnni|amx_bf16)$' | tr '\n' ' ')"
"$venv/bin/python" -c "import torch, lightning; print('torch', torch.__version__, '/ lightning', lightning.__version__, '/ torch threads', torch.get_num_threads())"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results="$work/results"
: > "$results"

fulmen() { # batch setup
    local in_memory=false
    [ "$2" = memory ] && in_memory=true
    local log="$work/fulmen.log"
    rm -rf "$work/fulmen-root"
    # shellcheck disable=SC2086
    "$bin" fit --data.synthetic true --data.in_memory "$in_memory" --data.batch_size "$1" --trainer.max_epochs "$epochs" \
        --trainer.logger '[csv]' --trainer.enable_progress_bar false --trainer.default_root_dir "$work/fulmen-root" ${FULMEN_ARGS:-} > "$log" 2>&1 ||
        { echo "fulmen failed:"; tail -5 "$log"; exit 1; }
    sed -n 's/.* in \([0-9.]*\)s (\([0-9.]*\) img\/s, validation included; \([0-9.]*\)% CPU, peak RSS \([0-9]*\) MB).*/\1 \2 \3 \4/p' "$log" | tail -1
}

lightning() { # batch
    local log="$work/lightning.log"
    rm -rf "$work/lightning-root"
    "$venv/bin/python" "$here/lightning_fit.py" "$1" "$epochs" "$pl_workers" "$work/lightning-root" > "$log" 2>&1 ||
        { echo "lightning failed:"; tail -5 "$log"; exit 1; }
    sed -n 's/^fit_s \([0-9.]*\) img_s \([0-9.]*\) cpu_pct \([0-9.]*\) rss_mb \([0-9.]*\)$/\1 \2 \3 \4/p' "$log"
}

run() { # who batch setup round
    local numbers
    if [ "$1" = fulmen ]; then numbers=$(fulmen "$2" "$3"); else numbers=$(lightning "$2"); fi
    [ -n "$numbers" ] || { echo "no timing line from $1"; exit 1; }
    echo "$1 $2 $3 $numbers" >> "$results"
    printf 'round %s  batch %-4s %-9s %-9s fit %6ss  %7s img/s  CPU %4s%%  RSS %5s MB\n' "$4" "$2" "$3" "$1" $numbers
}

for round in $(seq 1 "$rounds"); do
    for batch in $batches; do
        for setup in $setups; do
            if [ $((round % 2)) = 1 ]; then
                run fulmen "$batch" "$setup" "$round"; run lightning "$batch" "$setup" "$round"
            else
                run lightning "$batch" "$setup" "$round"; run fulmen "$batch" "$setup" "$round"
            fi
        done
    done
done

echo
echo "medians over $rounds rounds ($epochs epochs, validation included; speed = Lightning's fit time / fulmen's)"
printf '%-6s %-9s %10s %10s %8s %10s %10s %9s %9s %7s\n' batch setup "fulmen s" "PL s" speed "fulmen CPU" "PL CPU" "fulmen MB" "PL MB" "RSS"
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for batch in $batches; do
    for setup in $setups; do
        col() { awk -v w="$1" -v b="$batch" -v s="$setup" -v c="$2" '$1 == w && $2 == b && $3 == s { print $c }' "$results" | median; }
        fs=$(col fulmen 4); ls=$(col lightning 4)
        fc=$(col fulmen 6); lc=$(col lightning 6)
        fm=$(col fulmen 7); lm=$(col lightning 7)
        printf '%-6s %-9s %10s %10s %7.2fx %9s%% %9s%% %9s %9s %6.2fx\n' "$batch" "$setup" "$fs" "$ls" "$(awk -v a="$ls" -v b="$fs" 'BEGIN { print a / b }')" "$fc" "$lc" "$fm" "$lm" "$(awk -v a="$fm" -v b="$lm" 'BEGIN { print a / b }')"
    done
done
