# Sourced by the parts written in Python (crash, diskfull): sets DATAPORT_BIN
# (default target/release/dataport, built only when it is missing) and py,
# the interop suite's venv python, with that suite's stubs on PYTHONPATH.
# The venv and stubs are made by tests/interop/python/run when they are
# missing or older than proto/ or requirements.txt.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
interop="$root/tests/interop/python"
py="$interop/.venv/bin/python"
gen="$interop/gen"

if [[ -z "${DATAPORT_BIN:-}" ]]; then
  DATAPORT_BIN="$root/target/release/dataport"
  if [[ ! -x "$DATAPORT_BIN" ]]; then
    echo "reliability: building $DATAPORT_BIN" >&2
    (cd "$root" && cargo build --release -p dataport)
  fi
elif [[ "$DATAPORT_BIN" != /* ]]; then
  DATAPORT_BIN="$PWD/$DATAPORT_BIN"
fi
export DATAPORT_BIN

# `run --collect-only` makes the venv (from requirements.txt) and the stubs
# without running a test.
stale=""
if [[ ! -x "$py" || ! -f "$gen/helloworld_pb2.py" ]]; then
  stale="missing"
elif [[ -n "$(find "$root/proto" -name '*.proto' -newer "$gen/helloworld_pb2.py" -print -quit)" ]]; then
  stale="older than proto/"
elif [[ "$(cat "$interop/.venv/.requirements.sha256" 2>/dev/null)" != "$(sha256sum "$interop/requirements.txt" | cut -d' ' -f1)" ]]; then
  stale="older than requirements.txt"
fi
if [[ -n "$stale" ]]; then
  echo "reliability: interop venv or stubs $stale: making them with tests/interop/python/run --collect-only" >&2
  "$interop/run" --collect-only -q >/dev/null
fi

export PYTHONPATH="$gen${PYTHONPATH:+:$PYTHONPATH}"
