#!/bin/bash
# Run on your own (Debian 12) machine, from the project's root: fills .gp/ (kept out of git
# through .git/info/exclude) with Debian 12's gnuplot-nox, the libraries it needs that the GPU
# machine may lack, and setup.sh, so that `make reproduce SCALE=paper` can draw its figures
# there (the GPU machine has no gnuplot). On the GPU machine, carry ".gp" and start with
#   source .device/setup.sh && source .gp/setup.sh && ...
# setup.sh unpacks them into /tmp/gp (apart from .device's /tmp/sys, so that the machine's own
# libraries stay first for everything else) and points PMI_GNUPLOT at a wrapper that runs gnuplot
# with them. About 20 MB; .device and .gp together stay under the device tool's 64 MiB.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
grep -qx '/.gp/' .git/info/exclude 2>/dev/null || echo '/.gp/' >> .git/info/exclude
mkdir -p .gp
cd .gp
pkgs="gnuplot-nox gnuplot-data fontconfig-config fonts-dejavu-core libabsl20220623 libaom3 libavif15 libbrotli1
libcairo2 libdatrie1 libdav1d6 libde265-0 libdeflate0 libedit2 libexpat1 libffi8 libfontconfig1 libfreetype6 libfribidi0
libgav1-1 libgd3 libglib2.0-0 libgraphite2-3 libharfbuzz0b libheif1 libjbig0 libjpeg62-turbo liblerc4 liblua5.4-0
libnuma1 libpango-1.0-0 libpangocairo-1.0-0 libpangoft2-1.0-0 libpixman-1-0 libpng16-16 librav1e0 libreadline8
libsvtav1enc1 libthai-data libthai0 libtiff6 libwebp7 libx11-6 libx11-data libx265-199 libxau6 libxcb-render0
libxcb-shm0 libxcb1 libxdmcp6 libxext6 libxpm4 libxrender1 libyuv0 libbsd0 libmd0"
for p in $pkgs; do
  ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$p"; }
done
cat > setup.sh <<'SETUP'
# Sourced on the GPU machine (after .device/setup.sh): see scripts/gpu/carry-gnuplot.sh.
gp=/tmp/gp
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ ! -e $gp/.done ]; then
  mkdir -p $gp/cache
  for f in "$here"/*.deb; do dpkg -x "$f" $gp; done
  printf '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><dir>%s/usr/share/fonts</dir><cachedir>%s/cache</cachedir></fontconfig>\n' $gp $gp > $gp/fonts.conf
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/usr/lib/x86_64-linux-gnu:%s/lib/x86_64-linux-gnu FONTCONFIG_FILE=%s/fonts.conf GNUPLOT_LIB=%s/usr/share/gnuplot/gnuplot/5.4 exec %s/usr/bin/gnuplot-nox "$@"\n' $gp $gp $gp $gp $gp > $gp/gnuplot
  chmod +x $gp/gnuplot
  touch $gp/.done
fi
export PMI_GNUPLOT=$gp/gnuplot
SETUP
du -sh .
