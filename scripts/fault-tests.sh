#!/usr/bin/env bash
# The long versions of the fault tests in tests/reliability.rs:
#
# 1. KILLS (default 100) SIGKILLs at random moments of a training run with checkpoints:
#    after each, the checkpoint on disk must load; the last one, resumed to the end, must
#    give the uninterrupted run's weights bit for bit.
# 2. A real full disk (a 1 MiB tmpfs; needs root, skipped otherwise): a checkpoint that does
#    not fit is a clear error, and the previous checkpoint stays as it was, byte for byte.
#
#   scripts/fault-tests.sh          # 100 kills
#   KILLS=20 scripts/fault-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${KILLS:-100}
echo "== $kills kills"
BACKPROP_FAULT_KILLS=$kills nice -n 19 cargo test --test reliability \
    killed_runs_always_leave -- --nocapture 2>&1 | grep -E "kills at random|test result|panicked|FAILED"

echo "== full disk"
nice -n 19 cargo build --quiet
bin=$PWD/target/debug/backprop
mnt=$(mktemp -d /tmp/backprop-full-XXXX)
if ! mount -t tmpfs -o size=1m tmpfs "$mnt" 2>/dev/null; then
    echo "cannot mount a tmpfs here (not root?): skipped"
    rmdir "$mnt"
    exit 0
fi
trap 'umount "$mnt"; rmdir "$mnt"' EXIT
run=(train --dataset xor --samples 200 --hidden 64,64 --json --out "$mnt/run")
"$bin" "${run[@]}" --epochs 2 >/dev/null
cp "$mnt/run/model.safetensors" /tmp/bp-full-model.$$
cp "$mnt/run/model.training.safetensors" /tmp/bp-full-training.$$
# leave less room than one more training file needs
free=$(df --output=avail -B1 "$mnt" | tail -1)
need=$(stat -c %s "$mnt/run/model.training.safetensors")
head -c $((free - need / 2)) /dev/zero >"$mnt/filler" 2>/dev/null || true
set +e
err=$("$bin" "${run[@]}" --epochs 4 --resume 2>&1 >/dev/null)
rc=$?
set -e
echo "resume on a full disk: exit $rc: $(echo "$err" | grep error | head -1)"
[ $rc -ne 0 ] || { echo "FAILED: the run did not fail"; exit 1; }
echo "$err" | grep -q "No space left on device" || { echo "FAILED: no clear error"; exit 1; }
cmp "$mnt/run/model.safetensors" /tmp/bp-full-model.$$
cmp "$mnt/run/model.training.safetensors" /tmp/bp-full-training.$$
echo "the previous checkpoint is intact (both files byte for byte)"
rm -f "$mnt/filler" /tmp/bp-full-model.$$ /tmp/bp-full-training.$$
"$bin" "${run[@]}" --epochs 4 --resume >/dev/null
echo "with room again, the run resumed and finished"
