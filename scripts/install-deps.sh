#!/usr/bin/env bash
# install-deps.sh - the Debian packages qwenbench builds, tests and analyses with (idempotent).
# The CUDA engine additionally needs the CUDA toolkit with cuBLAS and NCCL (e.g. in /usr/local/cuda);
# without nvcc the build is CPU-only.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake git pkg-config \
  libopenmpi-dev openmpi-bin \
  libhdf5-dev hdf5-tools \
  libjansson-dev \
  python3 python3-h5py python3-pandas python3-matplotlib python3-numpy \
  clang libclang-rt-14-dev \
  slurm-wlm munge
