#!/bin/sh
# Installs the Debian packages pmi-lab needs for building, testing and reproducing, if missing.
# Used by `make deps` (and so by `make test` and `make reproduce`). Needs root or sudo. Only the
# missing packages are installed (apt-get install --no-upgrade: an installed one is never
# upgraded); before installing it prints what apt-get will install, and names any installed
# package that a new one's dependencies force apt-get to upgrade. With
# TORCH_DIR set (libtorch from elsewhere, e.g. a PyTorch install) it leaves out libtorch-dev;
# on a system without dpkg it installs nothing and runs the check below instead.
#
# scripts/deps.sh --check: installs nothing; checks that what building ./pmi needs is there (a C
# and a C++ compiler, pkg-config, hdf5, gsl, inih zlib and libcjson through pkg-config, libtorch's
# headers), prints one line per missing piece with the package that provides it, and exits 1
# if any is missing. The Makefile runs it before compiling. It reads TORCH_DIR (a folder with
# libtorch's include/ and lib/) and TORCH_INC (where the Makefile looks for the headers).
set -e
PKGS="build-essential pkg-config git libtorch-dev libopenblas0-pthread libhdf5-dev libgsl-dev libinih-dev zlib1g-dev
      libcmocka-dev gnuplot-nox dataset-fashion-mnist python3-h5py python3-scipy python3-numpy
      python3-pandas hdf5-tools libcjson-dev python3-torch"

# Prints "missing <what> (Debian: <package>): ..." and remembers the failure.
need() {
  echo "missing $1 (Debian: $2): run \`make deps\` or \`apt-get install $2\`" >&2
  bad=1
}

check() {
  bad=0; CC=${CC:-cc}; CXX=${CXX:-c++}
  command -v "${CC%% *}" >/dev/null 2>&1 || need "a C compiler (${CC:-cc})" build-essential
  command -v "${CXX%% *}" >/dev/null 2>&1 || need "a C++ compiler (${CXX:-c++})" build-essential
  if command -v pkg-config >/dev/null 2>&1; then
    pkg-config --exists hdf5-serial || pkg-config --exists hdf5 || need hdf5 libhdf5-dev
    pkg-config --exists gsl || need gsl libgsl-dev
    pkg-config --exists inih || need inih libinih-dev
    pkg-config --exists zlib || need zlib zlib1g-dev
    pkg-config --exists libcjson || need libcjson libcjson-dev
  else
    need pkg-config pkg-config
  fi
  inc=${TORCH_INC:-/usr/include}
  if [ ! -f "$inc/torch/csrc/api/include/torch/torch.h" ]; then
    if [ -n "$TORCH_DIR" ]; then
      echo "missing libtorch: TORCH_DIR=$TORCH_DIR has no include/torch/csrc/api/include/torch/torch.h" \
           "(give a PyTorch install's torch/ folder or an unpacked libtorch archive)" >&2
      bad=1
    else
      need libtorch libtorch-dev
    fi
  fi
  exit $bad
}
[ "$1" = --check ] && check
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps: no dpkg here, so nothing is installed; checking what the build needs"
  check
fi
[ -n "$TORCH_DIR" ] && PKGS=$(echo $PKGS | sed 's/libtorch-dev //')

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && { echo "deps: all present"; exit 0; }
echo "deps: missing:$missing"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
# what apt-get would do, dependencies included ("Inst <pkg> [<installed version>] (...)": a
# bracketed version is an upgrade of an installed package)
plan=$(apt-get install -s --no-upgrade --no-install-recommends $missing 2>/dev/null | grep '^Inst ' || true)
new=$(echo "$plan" | grep -v '^Inst [^ ]* \[' | awk 'NF {print $2}' | tr '\n' ' ')
upg=$(echo "$plan" | grep '^Inst [^ ]* \[' | awk '{print $2}' | tr '\n' ' ')
echo "deps: apt-get will install $(echo "$new" | wc -w) package(s): $new"
[ -z "$upg" ] || echo "deps: and upgrade, because the new packages depend on newer versions: $upg"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-upgrade --no-install-recommends $missing
