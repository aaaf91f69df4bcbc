#!/bin/sh
# Submit an image to Darkroom from any program, with nothing but the sqlite3
# command line: insert a `pending` row; a running `darkroom worker` picks it up
# within jobs.reconcile_interval_s (30 s by default). Contract: docs/contract.md (v1).
#
# Usage: examples/enqueue.sh DATABASE IMAGE [METADATA_JSON]
#   DATABASE  Darkroom's SQLite database (data/app.db by default)
#   IMAGE     the image file; the worker must be able to read it at this path
#   prints the new image id
#
# Example:
#   id=$(examples/enqueue.sh data/app.db uploads/cat.jpg '{"user": 42}')
#   examples/status.sh data/app.db "$id"
set -eu

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 DATABASE IMAGE [METADATA_JSON]" >&2
    exit 2
fi
db=$1
image=$2
metadata=${3:-}

[ -f "$db" ] || { echo "$0: no database at $db (run: darkroom migrate)" >&2; exit 1; }
[ -f "$image" ] || { echo "$0: no such file: $image" >&2; exit 1; }

# An absolute path, so the worker finds the file whatever its working directory.
dir=$(cd "$(dirname "$image")" && pwd)
name=$(basename "$image")
path="$dir/$name"
size=$(wc -c < "$image" | tr -d ' ')
case $(printf '%s' "$name" | tr 'A-Z' 'a-z') in
    *.jpg|*.jpeg) mime=image/jpeg ;;
    *.png) mime=image/png ;;
    *.webp) mime=image/webp ;;
    *.gif) mime=image/gif ;;
    *.avif) mime=image/avif ;;
    *.heic|*.heif) mime=image/heic ;;
    *.tif|*.tiff) mime=image/tiff ;;
    *) mime=application/octet-stream ;;  # Darkroom decides from the bytes anyway
esac

# SQL string literal: double every single quote.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

# A random id from SQLite itself (any text of 1-128 [A-Za-z0-9_.-] works).
id=$(sqlite3 "$db" "SELECT lower(hex(randomblob(16)));")
if [ -n "$metadata" ]; then meta_sql=$(quote "$metadata"); else meta_sql=NULL; fi

# .timeout: wait for Darkroom's short write transactions instead of failing.
sqlite3 -bail "$db" <<SQL
.timeout 10000
INSERT INTO images (id, filename, original_path, mime_type, size, status, metadata, created_at)
VALUES ('$id', $(quote "$name"), $(quote "$path"), '$mime', $size, 'pending',
        $meta_sql, CAST(strftime('%s', 'now') AS INTEGER));
SQL
echo "$id"
