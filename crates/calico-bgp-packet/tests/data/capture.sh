#!/bin/bash
# Regenerates the real-speaker captures in this directory (see examples/capture_peer.rs).
# Runs BIRD 2 and GoBGP (Debian bookworm packages) against our capture peer, all inside one
# throw-away network namespace on loopback addresses. Needs root. Stops only its own PIDs.
#
# Usage: BIRD=/usr/sbin/bird BIRDC=/usr/sbin/birdc GOBGPD=/usr/bin/gobgpd GOBGP=/usr/bin/gobgp \
#        CAPTURE=target/debug/examples/capture_peer ./capture.sh OUTDIR
set -u
OUT=${1:?usage: capture.sh OUTDIR}
BIRD=${BIRD:-/usr/sbin/bird}; BIRDC=${BIRDC:-/usr/sbin/birdc}
GOBGPD=${GOBGPD:-/usr/bin/gobgpd}; GOBGP=${GOBGP:-/usr/bin/gobgp}
CAPTURE=${CAPTURE:?path to the capture_peer example binary}
NS=bgpcap-$$
WORK=$(mktemp -d /tmp/bgpcap.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/bird.pid" ] && kill "$(cat "$WORK/bird.pid")" 2>/dev/null || true
  sleep 0.5
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
for a in 1 2 3 4 5 6; do ip -n "$NS" addr add 10.99.0.$a/32 dev lo; done

# BIRD: AS 64512 like Calico's default. iBGP to .2 (ADD-PATH + GR, as Calico's mesh),
# eBGP to .3 (a 4-octet peer), eBGP to .6 (a 2-octet "OLD" peer: AS4_PATH).
cat > "$WORK/bird.conf" <<CONF
log "$WORK/bird.log" all;
router id 10.99.0.1;
protocol device { }
protocol static s4 { ipv4; route 10.64.0.0/26 blackhole; route 10.64.0.64/26 blackhole; route 192.168.7.1/32 blackhole; }
protocol static s6 { ipv6; route fd00:1::/122 blackhole; route fd00:2::/64 blackhole; }
filter calico_tag { bgp_community.add((64512,100)); bgp_community.add((65535,65281)); bgp_large_community.add((64512,1,2)); accept; }
filter ebgp_tag { bgp_path.prepend(4200000001); bgp_community.add((64512,100)); bgp_large_community.add((4200000001,7,8)); bgp_med = 50; accept; }
protocol bgp mesh {
  local 10.99.0.1 port 1179 as 64512; neighbor 10.99.0.2 as 64512; multihop;
  connect delay time 1; connect retry time 1; graceful restart;
  ipv4 { add paths on; export filter calico_tag; import none; };
  ipv6 { next hop address 2001:db8::1; add paths on; export filter calico_tag; import none; };
}
protocol bgp ebgp4 {
  local 10.99.0.1 port 1179 as 64512; neighbor 10.99.0.3 as 65003; multihop;
  connect delay time 1; connect retry time 1;
  ipv4 { export filter ebgp_tag; import none; };
}
protocol bgp ebgpold {
  local 10.99.0.1 port 1179 as 64512; neighbor 10.99.0.6 as 65006; multihop;
  connect delay time 1; connect retry time 1;
  ipv4 { export filter ebgp_tag; import none; };
}
CONF

cat > "$WORK/gobgpd.toml" <<CONF
[global.config]
  as = 64512
  router-id = "10.99.0.4"
  port = 179
  local-address-list = ["10.99.0.4"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.99.0.5"
    peer-as = 65005
  [neighbors.transport.config]
    local-address = "10.99.0.4"
  [neighbors.ebgp-multihop.config]
    enabled = true
    multihop-ttl = 5
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
CONF

X="ip netns exec $NS"
$X "$CAPTURE" 10.99.0.2 64512 25 "$OUT/bird-ibgp" 2> "$WORK/cap-ibgp.log" & PIDS+=($!)
$X "$CAPTURE" 10.99.0.3 65003 25 "$OUT/bird-ebgp" 2> "$WORK/cap-ebgp.log" & PIDS+=($!)
CAPTURE_OLD_SPEAKER=1 $X "$CAPTURE" 10.99.0.6 65006 25 "$OUT/bird-old" 2> "$WORK/cap-old.log" & PIDS+=($!)
$X "$CAPTURE" 10.99.0.5 65005 25 "$OUT/gobgp" 2> "$WORK/cap-gobgp.log" & PIDS+=($!)
sleep 0.5
$X "$BIRD" -c "$WORK/bird.conf" -s "$WORK/bird.ctl" -P "$WORK/bird.pid"
$X "$GOBGPD" -f "$WORK/gobgpd.toml" -p --pprof-disable --api-hosts 127.0.0.1:50051 > "$WORK/gobgpd.log" 2>&1 & PIDS+=($!)
# GoBGP connects after its first connect-retry timer; wait until it is established.
for i in $(seq 1 40); do
  $X "$GOBGP" -u 127.0.0.1 -p 50051 neighbor 2>/dev/null | grep -q Establ && break
  sleep 0.5
done
G="$X $GOBGP -u 127.0.0.1 -p 50051"
$G global rib add -a ipv4 10.65.0.0/26 nexthop 10.99.0.4 origin igp med 10 community 64512:200 large-community 64512:3:4 || true
$G global rib add -a ipv4 10.65.0.64/26 nexthop 10.99.0.4 origin incomplete || true
$G global rib add -a ipv6 fd00:9::/64 nexthop 2001:db8::4 origin igp || true
sleep 2
# Withdrawals: GoBGP one IPv4 route, BIRD all its IPv6 routes (MP_UNREACH_NLRI).
$G global rib del -a ipv4 10.65.0.64/26 || true
$X "$BIRDC" -s "$WORK/bird.ctl" disable s6 > /dev/null || true
sleep 3
for p in "${PIDS[@]:0:4}"; do wait "$p" || true; done
cat "$WORK"/cap-*.log; grep -i -E "error|established|down" "$WORK/bird.log" | head -20
