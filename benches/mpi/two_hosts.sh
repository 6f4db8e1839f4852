#!/usr/bin/env bash
# Two machines on one: `train --distributed` with its 2 ranks in two network namespaces
# joined by a veth pair, each namespace a host with its own address (10.77.0.1 and
# 10.77.0.2, created here and removed on exit), OpenMPI talking TCP over the veth only.
# (Both "hosts" are this machine's cores, so ranks are not bound to cores.)
# mpirun runs in the first namespace and starts the second host's daemon through a
# launcher that enters that namespace (standing in for ssh). Then the same run in one
# process, and the two test accuracies side by side.
#
#   benches/mpi/two_hosts.sh [EXTRA TRAIN FLAGS...]     (as root; needs iproute2, OpenMPI)
#
# Default run: the MLP on 12,000 MNIST images for 3 epochs. BIN overrides the binary
# (default target/release/backprop, built with `cargo build --release --features mpi`).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/backprop}
[ -x "$BIN" ] || { echo "$BIN is missing: cargo build --release --features mpi" >&2; exit 1; }
A=bp-mpi-a
B=bp-mpi-b
NET=10.77.0
tmp=$(mktemp -d)
cleanup() {
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$A"
ip netns add "$B"
ip link add veth-a netns "$A" type veth peer name veth-b netns "$B"
ip -n "$A" addr add "$NET.1/24" dev veth-a
ip -n "$B" addr add "$NET.2/24" dev veth-b
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set veth-a up
ip -n "$B" link set veth-b up
# the veth link is up (no ping needed): the peer address answers ARP once used

# mpirun calls "AGENT HOST COMMAND": run COMMAND in HOST's namespace, under its own hostname
cat >"$tmp/netns-ssh" <<AGENT
#!/bin/sh
while [ \$# -gt 0 ]; do
    case "\$1" in -*) shift ;; *) break ;; esac
done
host=\$1; shift
case "\$host" in
    $NET.1) ns=$A ;;
    $NET.2) ns=$B ;;
    *) echo "netns-ssh: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$ns; \$*"
AGENT
chmod +x "$tmp/netns-ssh"
printf '%s slots=1\n%s slots=1\n' "$NET.1" "$NET.2" >"$tmp/hosts"

FLAGS=(train --dataset mnist --limit 12500 --validation 500 --epochs 3 --threads 1 --seed 1 --json "$@")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "== 2 ranks on 2 hosts ($NET.1, $NET.2), TCP over the veth pair" >&2
ip netns exec "$A" unshare --uts sh -c "hostname $A; exec mpirun --hostfile $tmp/hosts -np 2 \
    --mca plm_rsh_agent $tmp/netns-ssh \
    --mca btl tcp,self --mca btl_tcp_if_include $NET.0/24 --mca oob_tcp_if_include $NET.0/24 \
    --display-map --bind-to none \
    $BIN ${FLAGS[*]} --distributed --out $tmp/two" >"$tmp/two.json"
# the map mpirun printed: one rank on each host
grep -E "Data for node|Process OMPI jobid" "$tmp/two.json" >&2 || true
echo "== 1 process" >&2
"$BIN" "${FLAGS[@]}" --out "$tmp/one" >"$tmp/one.json"
acc() { sed -n 's/.*"test_accuracy":\([0-9.]*\).*/\1/p' "$1"; }
one=$(acc "$tmp/one.json")
two=$(acc "$tmp/two.json")
echo "test accuracy: 1 process $one, 2 hosts $two"
[ "$one" = "$two" ] && echo "same accuracy" || { echo "accuracies differ" >&2; exit 1; }
