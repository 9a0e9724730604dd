//! Veth plumbing for 30 workloads, set up and torn down, side by side:
//!
//! - `born_in_place`: ONE `RTM_NEWLINK` per pair, the pod end born in the pod's namespace (what
//!   `calico_netlink::workload` does), then both ends up;
//! - `created_then_moved`: the classic slow path: both ends created in the host namespace, the pod end
//!   moved into the pod's namespace (`IFLA_NET_NS_FD`: unregister + RCU grace period + re-register), renamed
//!   to `eth0` there, then both ends up;
//! - `setup_workload`: the full Calico plumbing (veth, MAC, sysctls, routes, addresses) for reference.
//!
//! `(set-up half only)` variants time only the creation part of each iteration.
//! Each iteration creates 30 workloads (each in its own pre-made pod namespace) and deletes them again.
//! Needs root (it only works inside throw-away `TestNetns` namespaces); without it, it prints why and exits.
//! Run: `cargo bench -p calico-netlink --bench veth`.

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the failure report

use std::time::{Duration, Instant};

use calico_netlink::testing::{TestNetns, require_root};
use calico_netlink::workload::{WorkloadSpec, setup_workload, teardown_workload};
use calico_netlink::{HOST_SIDE_MAC, IpNet, RTPROT_BOOT, RouteSocket, VethSpec};
use criterion::{Criterion, criterion_group, criterion_main};

const WORKLOADS: usize = 30;

struct Lab {
    host: TestNetns,
    pods: Vec<TestNetns>,
    host_sock: RouteSocket,
    pod_socks: Vec<RouteSocket>,
}

impl Lab {
    fn new() -> Lab {
        let host = TestNetns::new("cnlb-host").unwrap();
        let pods: Vec<TestNetns> = (0..WORKLOADS)
            .map(|_| TestNetns::new("cnlb-pod").unwrap())
            .collect();
        let host_sock = RouteSocket::open_in(host.ns()).unwrap();
        let pod_socks = pods
            .iter()
            .map(|p| RouteSocket::open_in(p.ns()).unwrap())
            .collect();
        Lab {
            host,
            pods,
            host_sock,
            pod_socks,
        }
    }

    fn host_if(i: usize) -> String {
        format!("calibench{i:02}")
    }

    fn up_both(&self, i: usize) {
        let h = self
            .host_sock
            .link_by_name(&Lab::host_if(i))
            .unwrap()
            .unwrap();
        self.host_sock.set_link_up(h.index).unwrap();
        let c = self.pod_socks[i].link_by_name("eth0").unwrap().unwrap();
        self.pod_socks[i].set_link_up(c.index).unwrap();
    }

    fn born_in_place(&self) {
        for i in 0..WORKLOADS {
            let name = Lab::host_if(i);
            self.host_sock
                .create_veth(&VethSpec {
                    name: &name,
                    mac: Some(HOST_SIDE_MAC),
                    mtu: Some(1450),
                    peer_name: "eth0",
                    peer_mac: None,
                    peer_netns: Some(self.pods[i].ns()),
                })
                .unwrap();
            self.up_both(i);
        }
    }

    fn created_then_moved(&self) {
        for i in 0..WORKLOADS {
            let name = Lab::host_if(i);
            let tmp = format!("tmpbench{i:02}");
            self.host_sock
                .create_veth(&VethSpec {
                    name: &name,
                    mac: Some(HOST_SIDE_MAC),
                    mtu: Some(1450),
                    peer_name: &tmp,
                    peer_mac: None,
                    peer_netns: None,
                })
                .unwrap();
            let peer = self.host_sock.link_by_name(&tmp).unwrap().unwrap();
            self.host_sock
                .move_link_to_netns(peer.index, self.pods[i].ns())
                .unwrap();
            let moved = self.pod_socks[i].link_by_name(&tmp).unwrap().unwrap();
            self.pod_socks[i]
                .set_link_name(moved.index, "eth0")
                .unwrap();
            self.up_both(i);
        }
    }

    fn full_setup(&self) {
        for i in 0..WORKLOADS {
            let name = Lab::host_if(i);
            let addr: IpNet = format!("10.70.{}.{}/32", i / 200, i % 200 + 1)
                .parse()
                .unwrap();
            setup_workload(&WorkloadSpec {
                host_ns: self.host.ns(),
                container_ns: self.pods[i].ns(),
                host_if: &name,
                container_if: "eth0",
                addresses: &[addr],
                mtu: 1450,
                container_mac: None,
                host_route_protocol: RTPROT_BOOT,
            })
            .unwrap();
        }
        for i in 0..WORKLOADS {
            assert!(
                teardown_workload(
                    self.host.ns(),
                    Some(self.pods[i].ns()),
                    &Lab::host_if(i),
                    "eth0"
                )
                .unwrap()
            );
        }
    }

    fn teardown(&self) {
        for i in 0..WORKLOADS {
            assert!(self.host_sock.delete_link(&Lab::host_if(i)).unwrap());
        }
    }
}

fn veth(c: &mut Criterion) {
    if !require_root() {
        return;
    }
    let lab = Lab::new();
    let mut group = c.benchmark_group("30 workloads set up + torn down");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for (name, setup) in [
        ("veth born_in_place", Lab::born_in_place as fn(&Lab)),
        (
            "veth created_then_moved",
            Lab::created_then_moved as fn(&Lab),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                setup(&lab);
                lab.teardown();
            })
        });
        // The same, timing only the set-up half (teardown is identical for both and dominated by the
        // kernel's RCU synchronisation on device deletion).
        group.bench_function(format!("{name} (set-up half only)"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    setup(&lab);
                    total += start.elapsed();
                    lab.teardown();
                }
                total
            })
        });
    }
    group.bench_function("setup_workload (full plumbing)", |b| {
        b.iter(|| lab.full_setup())
    });
    group.finish();
}

criterion_group!(benches, veth);
criterion_main!(benches);
