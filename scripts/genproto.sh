#!/usr/bin/env bash
# Generates pkapi/v1/*_pb2.py, *_pb2.pyi, *_pb2_grpc.py and docs.py from proto/ into
# the directory given (default: the repository root). Used by `make proto`
# and `make verify-proto`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here}
py=${PYTHON:-$here/.venv/bin/python}
mkdir -p "$out/pkapi/v1"
"$py" -m grpc_tools.protoc -I "$here/proto" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  "$here"/proto/pkapi/v1/*.proto
# The .proto comments, for the OpenAPI documents (kubectl explain).
"$py" "$here/scripts/gendocs.py" "$out" "$here/proto"
