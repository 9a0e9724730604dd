#!/usr/bin/env bash
# The main job until calico-lab exists: a calicoctl walkthrough on the embedded datastore, then one
# simulated host running calico-node with two pods networked by the calico CNI plugins.
# Everything lives in a temporary directory and in network namespaces this script creates and
# deletes; the host's own network configuration is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
echo "== building calicoctl"
cargo build --release -p calicoctl -p calico-node -p calico-cni
bin="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)"
ctl="$bin/calicoctl"
store=$(mktemp -d)
node=demo-node-$$
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  for ns in "$node" "$node-pod-a" "$node-pod-b"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$store"
}
trap cleanup EXIT
export CALICO_DATASTORE_PATH="$store/calico.db"
run() { echo; echo "\$ calicoctl $*"; "$ctl" "$@"; }
run apply -f examples/calico-examples.yaml
run get ippools -o wide
run get networkpolicies -A
run get globalnetworkpolicy block-metadata -o yaml
echo
echo "\$ calicoctl apply -f examples/invalid-policy.yaml   # must be refused, nothing applied"
if "$ctl" apply -f examples/invalid-policy.yaml; then
  echo "ERROR: the invalid file was accepted" >&2; exit 1
fi
run get globalnetworkpolicies

echo
echo "== part 2: a host (network namespace $node) running calico-node, two pods via CNI"
ip netns add "$node"
ip -n "$node" link add eth0 type veth peer name uplink0
ip -n "$node" addr add 10.200.0.1/24 dev eth0
ip -n "$node" link set eth0 up; ip -n "$node" link set uplink0 up; ip -n "$node" link set lo up
ip -n "$node" route add default dev eth0   # hosts have one; pods reach 169.254.1.1 by proxy ARP
NODENAME=node1 DATASTORE_TYPE=embedded CALICO_IPAM_SOCKET="$store/ipam.sock" CALICO_BGP_STATUS_SOCKET="$store/bgp.ctl" \
  CALICO_NODENAME_FILE="$store/nodename" CALICO_NODE_NETNS="/run/netns/$node" IP=autodetect \
  CALICO_IPV4POOL_CIDR=10.244.0.0/16 RUST_LOG=warn \
  nsenter --net="/run/netns/$node" "$bin/calico-node" >"$store/calico-node.log" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do [ -S "$store/ipam.sock" ] && [ -f "$store/nodename" ] && break; sleep 0.1; done
[ -S "$store/ipam.sock" ] || { echo "calico-node did not start:"; cat "$store/calico-node.log"; exit 1; }
run get nodes -o wide
mkdir -p "$store/cni"; ln -s "$bin/calico" "$bin/calico-ipam" "$store/cni/"
conf=$(printf '{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico","nodename":"node1","nodename_file":"%s","datastore_type":"embedded","datastore_path":"%s","mtu":1440,"ipam":{"type":"calico-ipam","agent_socket":"%s"}}' \
  "$store/nodename" "$CALICO_DATASTORE_PATH" "$store/ipam.sock")
cni() { # cni VERB POD
  echo "$conf" | nsenter --net="/run/netns/$node" env CNI_COMMAND="$1" CNI_CONTAINERID="demo-$2" \
    CNI_NETNS="/run/netns/$node-$2" CNI_IFNAME=eth0 CNI_PATH="$store/cni" \
    CNI_ARGS="K8S_POD_NAMESPACE=default;K8S_POD_NAME=$2;K8S_POD_INFRA_CONTAINER_ID=demo-$2" "$store/cni/calico"
}
for pod in pod-a pod-b; do
  ip netns add "$node-$pod"
  echo; echo "\$ CNI_COMMAND=ADD calico   # pod default/$pod"
  cni ADD "$pod" | tee "$store/$pod.json"
done
ip_b=$(sed -n 's/.*"address": *"\([0-9.]*\)\/32".*/\1/p' "$store/pod-b.json" | head -1)
sleep 1
echo; echo "\$ ip route   # on the host: the agent's routes (proto 80) and the block's blackhole"
ip -n "$node" route
run get workloadendpoints -o wide
run ipam show --show-blocks
echo; echo "\$ ping $ip_b   # from pod-a"
ip netns exec "$node-pod-a" busybox ping -c 2 -W 2 "$ip_b"
for pod in pod-a pod-b; do
  echo; echo "\$ CNI_COMMAND=DEL calico   # pod default/$pod"; cni DEL "$pod"
done
run get workloadendpoints
run ipam show
echo
echo "The datastore file was $CALICO_DATASTORE_PATH; it and the namespaces are removed on exit."
