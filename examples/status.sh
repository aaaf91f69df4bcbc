#!/bin/sh
# Read an image's status and variants back (docs/contract.md, v1).
#
# Usage: examples/status.sh DATABASE ID
# Example:
#   examples/status.sh data/app.db 5f0c2e8a9d6b4b7e8c1d2e3f4a5b6c7d
# Output: "status<TAB>error", then one "format<TAB>width<TAB>height<TAB>bytes<TAB>path"
# line per variant; paths are relative to the media directory (data/media).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 DATABASE ID" >&2; exit 2; }
id=$(printf '%s' "$2" | sed "s/'/''/g")
sqlite3 -separator '	' "$1" <<SQL
.timeout 10000
SELECT status, coalesce(error, '') FROM images WHERE id = '$id';
SELECT format, width, height, size, path FROM image_variants WHERE image_id = '$id' ORDER BY format, width;
SQL
