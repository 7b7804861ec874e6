#!/usr/bin/env bash
# Builds the tutorial example for CUDA without network access at build time, packed into
# target/gpu-check/cifar-cuda.xz for the GPU check. Burn 0.22's CUDA backend depends on
# cubecl-llvm, whose build script downloads LLVM; this build patches in tools/cubecl-llvm-stub
# (no LLVM; its NVPTX compiler always fails) and makes CubeCL's C++/NVRTC compiler the default
# (`cuda-nvrtc`). It runs in a throw-away git worktree, because the patch rewrites Cargo.lock.
# At run time the binary loads libcuda and libnvrtc and needs the CUDA headers (CUDA_PATH or
# /usr/local/cuda). CUDARC_CUDA_VERSION (default 12080) must not be newer than the GPU's driver.
# Usage: bash benches/gpu_check/build-cuda.sh      (about 12 min on 2 cores with a warm target/)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
tree=$(mktemp -d)/fulmen-cuda
git -C "$repo" worktree add --detach "$tree" HEAD
trap 'git -C "$repo" worktree remove --force "$tree"' EXIT
export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-12080}
export CARGO_TARGET_DIR="$repo/target/cuda"
(cd "$tree" && cargo build --release --features cuda-nvrtc --example cifar \
    --config "patch.crates-io.cubecl-llvm.path=\"$repo/tools/cubecl-llvm-stub\"")
mkdir -p "$repo/target/gpu-check"
cp "$CARGO_TARGET_DIR/release/examples/cifar" "$repo/target/gpu-check/cifar-cuda"
strip "$repo/target/gpu-check/cifar-cuda"
xz -T0 -f "$repo/target/gpu-check/cifar-cuda"
ls -l "$repo/target/gpu-check"
