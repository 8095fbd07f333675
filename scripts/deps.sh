#!/bin/sh
# Installs the Debian packages pmi-lab needs for building, testing and reproducing, if missing.
# Used by `make deps` (and so by `make test` and `make reproduce`). Needs root or sudo.
set -e
PKGS="build-essential pkg-config git libtorch-dev libopenblas0-pthread libhdf5-dev libgsl-dev libinih-dev zlib1g-dev
      libcmocka-dev gnuplot-nox dataset-fashion-mnist python3-h5py python3-scipy python3-numpy
      python3-pandas hdf5-tools"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && { echo "deps: all present"; exit 0; }
echo "deps: installing$missing"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
