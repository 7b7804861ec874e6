#!/usr/bin/env bash
# Builds what the GPU check runs, for a GPU machine without a Rust toolchain: the tutorial example
# with `--features wgpu`, stripped and xz-compressed into target/gpu-check/ (about 11 MB).
# Usage: bash benches/gpu_check/build.sh        then carry target/gpu-check to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --features wgpu --example cifar
mkdir -p target/gpu-check
cp target/release/examples/cifar target/gpu-check/cifar-wgpu
strip target/gpu-check/cifar-wgpu
xz -T0 -f target/gpu-check/cifar-wgpu
ls -l target/gpu-check
