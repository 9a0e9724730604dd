//! Calico's workload plumbing: what `cni-plugin/pkg/dataplane/linux/dataplane_linux.go` does for a pod
//! (`DoNetworking`, `DoWorkloadNetnsSetUp`, `SetupRoutes`, `configureSysctls`, `configureContainerSysctls`,
//! `CleanUpNamespace`), plus a real verification for CNI CHECK.
//!
//! Layout produced for a pod with 10.244.1.5 and fd00::5 (`caliX` in the host, `eth0` in the pod):
//! - one veth pair, created with ONE `RTM_NEWLINK` whose ends are born in their final namespaces (moving a
//!   device between namespaces is the slow path: unregister, RCU grace period, re-register);
//! - host side: MAC `ee:ee:ee:ee:ee:ee`, up, sysctls `route_localnet=1 proxy_arp=1 forwarding=1
//!   neigh/proxy_delay=0` (v4), `accept_dad=0 disable_ipv6=0 proxy_ndp=1 forwarding=1` (v6), `accept_ra=0`;
//!   routes `10.244.1.5/32 dev caliX scope link` and `fd00::5/128 dev caliX` (protocol as asked);
//! - pod side: up, MTU, `10.244.1.5/32`, `fd00::5/128`, `169.254.1.1 dev eth0 scope link`,
//!   `default via 169.254.1.1 dev eth0`, `default via fe80::ecee:eeff:feee:eeee dev eth0` (the host side's
//!   link-local address derived from its MAC), `accept_dad=0` on eth0 (DAD would delay the /128 by seconds).
//!   No static ARP entry: the host answers ARP for 169.254.1.1 by proxy ARP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::error::{ErrorKind, NetlinkError};
use crate::types::{Link, MacAddr, Route, RouteFilter, RouteScope, VethSpec, format_mac};
use crate::{HOST_SIDE_MAC, NetNs, RT_TABLE_MAIN, RTPROT_BOOT, RouteSocket, sysctl};

/// The IPv4 gateway every Calico workload routes through: link-local, never assigned anywhere; the host
/// side answers ARP for it by proxy ARP.
pub const IPV4_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// The host side's IPv6 link-local address: EUI-64 of `ee:ee:ee:ee:ee:ee`.
pub const IPV6_GATEWAY: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xecee, 0xeeff, 0xfeee, 0xeeee);

/// How long the host side may take to accept its MAC (udev's MACAddressPolicy can race with us; Calico
/// retries for 5 s) and to show its IPv6 link-local address (Calico: 10 tries 50 ms apart).
const MAC_TIMEOUT: Duration = Duration::from_secs(5);
const LINK_LOCAL_TIMEOUT: Duration = Duration::from_secs(2);

/// What to plumb for one workload.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadSpec<'a> {
    pub host_ns: &'a NetNs,
    pub container_ns: &'a NetNs,
    /// Host-side veth name, e.g. `cali7fcc33642a0`.
    pub host_if: &'a str,
    /// Container-side name (`CNI_IFNAME`, usually `eth0`).
    pub container_if: &'a str,
    /// The workload's addresses. Any prefix length is accepted and narrowed to /32 or /128, as Calico
    /// does with what IPAM returns (e.g. `10.244.220.81/26` becomes `10.244.220.81/32`).
    pub addresses: &'a [IpNet],
    /// MTU of both ends; 0 = kernel default.
    pub mtu: u32,
    /// Container-side MAC (annotation `cni.projectcalico.org/hwAddr`); `None` = kernel generated.
    pub container_mac: Option<MacAddr>,
    /// Protocol of the host routes (Calico's CNI plugin: [`RTPROT_BOOT`]).
    pub host_route_protocol: u8,
}

/// The interfaces of a plumbed workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadInterfaces {
    pub host_index: u32,
    pub host_mac: MacAddr,
    pub container_index: u32,
    pub container_mac: MacAddr,
}

/// The addresses as host prefixes (/32, /128), in order.
fn host_prefixes(addresses: &[IpNet]) -> Vec<IpNet> {
    addresses.iter().map(|a| IpNet::from(a.addr())).collect()
}

fn families(addrs: &[IpNet]) -> (bool, bool) {
    (
        addrs.iter().any(|a| a.addr().is_ipv4()),
        addrs.iter().any(|a| a.addr().is_ipv6()),
    )
}

fn validate(spec: &WorkloadSpec<'_>, op: &str) -> Result<(), NetlinkError> {
    crate::link::validate_ifname(op, spec.host_if)?;
    crate::link::validate_ifname(op, spec.container_if)?;
    if spec.mtu != 0 && spec.mtu < 68 {
        return Err(NetlinkError::invalid(
            op,
            format!("MTU {} is below the IPv4 minimum of 68", spec.mtu),
        ));
    }
    if spec.host_ns.same_as(spec.container_ns)? {
        return Err(NetlinkError::invalid(
            op,
            format!(
                "the container namespace {} is the host namespace",
                spec.container_ns.path().display()
            ),
        ));
    }
    Ok(())
}

fn workload_label(host_if: &str, container_if: &str) -> String {
    format!("{host_if} (container side {container_if})")
}

/// Applies Calico's host-side sysctls for `host_if` (dataplane_linux.go `configureSysctls`, the same set
/// Felix's endpoint manager re-asserts). Call inside the host namespace ([`NetNs::run`]).
///
/// `neigh/<if>/proxy_delay` and `accept_ra` are best effort, as in Calico: a kernel without IPv6 has no
/// `accept_ra` to write; other failures of those two are still reported.
pub fn configure_host_side(host_if: &str, ipv4: bool, ipv6: bool) -> Result<(), NetlinkError> {
    let best_effort = |key: String, value: &str| match sysctl::write(&key, value) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    if ipv4 {
        // Allow NAT to the host's own addresses (route_localnet), answer ARP for 169.254.1.1 without the
        // default 0.8 s proxy delay, and forward packets coming from the workload.
        sysctl::write(&format!("net/ipv4/conf/{host_if}/route_localnet"), "1")?;
        best_effort(format!("net/ipv4/neigh/{host_if}/proxy_delay"), "0")?;
        sysctl::write(&format!("net/ipv4/conf/{host_if}/proxy_arp"), "1")?;
        sysctl::write(&format!("net/ipv4/conf/{host_if}/forwarding"), "1")?;
    }
    if ipv6 {
        // accept_dad=0 before the link goes up, so the host side's link-local address (the workload's IPv6
        // gateway) is usable at once instead of after DAD.
        sysctl::write(&format!("net/ipv6/conf/{host_if}/accept_dad"), "0")?;
        sysctl::write(&format!("net/ipv6/conf/{host_if}/disable_ipv6"), "0")?;
        sysctl::write(&format!("net/ipv6/conf/{host_if}/proxy_ndp"), "1")?;
        sysctl::write(&format!("net/ipv6/conf/{host_if}/forwarding"), "1")?;
    }
    // Never learn routes from router advertisements sent by a workload (a security measure Calico applies
    // even without IPv6).
    best_effort(format!("net/ipv6/conf/{host_if}/accept_ra"), "0")?;
    Ok(())
}

/// Calico's `configureContainerSysctls`: IP forwarding inside the pod is off unless the netconf's
/// `container_settings.allow_ip_forwarding` is set. Call inside the container namespace.
pub fn configure_container_forwarding(
    ipv4: bool,
    ipv6: bool,
    allow: bool,
) -> Result<(), NetlinkError> {
    let value = if allow { "1" } else { "0" };
    if ipv4 {
        sysctl::write("net/ipv4/ip_forward", value)?;
    }
    if ipv6 {
        sysctl::write("net/ipv6/conf/all/forwarding", value)?;
    }
    Ok(())
}

/// Creates and configures the workload's veth pair (see the module docs). Nothing is left half-applied:
/// when a step after the veth creation fails, the pair is deleted again (which also removes its
/// addresses, routes and per-interface sysctls), and the error names the failed step.
///
/// An existing `host_if` is an error ([`ErrorKind::Exists`]); Calico's plugin deletes a stale host veth of
/// the same name before calling this (`RouteSocket::delete_link`), and so should callers that want that.
pub fn setup_workload(spec: &WorkloadSpec<'_>) -> Result<WorkloadInterfaces, NetlinkError> {
    let label = format!(
        "setting up workload {}",
        workload_label(spec.host_if, spec.container_if)
    );
    validate(spec, &label)?;
    let hs = RouteSocket::open_in(spec.host_ns).map_err(|e| e.context(&label))?;
    let cs = RouteSocket::open_in(spec.container_ns).map_err(|e| e.context(&label))?;

    // Name clashes, checked first so the error says which side clashes (the kernel's EEXIST does not).
    if let Some(l) = hs
        .link_by_name(spec.host_if)
        .map_err(|e| e.context(&label))?
    {
        return Err(NetlinkError::new(
            format!("{label}: creating the veth pair"),
            ErrorKind::Exists,
            format!(
                "host interface {} already exists (index {}) in {}",
                l.name,
                l.index,
                spec.host_ns.path().display()
            ),
        ));
    }
    if let Some(l) = cs
        .link_by_name(spec.container_if)
        .map_err(|e| e.context(&label))?
    {
        return Err(NetlinkError::new(
            format!("{label}: creating the veth pair"),
            ErrorKind::Exists,
            format!(
                "container interface {} already exists (index {}) in {}",
                l.name,
                l.index,
                spec.container_ns.path().display()
            ),
        ));
    }

    let veth = VethSpec {
        name: spec.host_if,
        mac: Some(HOST_SIDE_MAC),
        mtu: (spec.mtu != 0).then_some(spec.mtu),
        peer_name: spec.container_if,
        peer_mac: spec.container_mac,
        peer_netns: Some(spec.container_ns),
    };
    hs.create_veth(&veth)
        .map_err(|e| e.context(format!("{label}: creating the veth pair")))?;

    match configure_created(spec, &hs, &cs) {
        Ok(ifaces) => Ok(ifaces),
        Err(e) => {
            let e = e.context(&label);
            // Undo: deleting either end removes the pair and everything attached to it.
            let undo = match hs.delete_link(spec.host_if) {
                Ok(true) => Ok(()),
                Ok(false) => cs.delete_link(spec.container_if).map(|_| ()),
                Err(undo) => Err(undo),
            };
            match undo {
                Ok(()) => Err(e),
                Err(undo) => Err(NetlinkError::new(
                    e.operation().to_string(),
                    e.kind(),
                    format!(
                        "{} (and undoing the half-made workload failed too: {undo})",
                        e.detail()
                    ),
                )),
            }
        }
    }
}

/// Every step after the veth pair exists. Errors carry the step name; the caller undoes.
fn configure_created(
    spec: &WorkloadSpec<'_>,
    hs: &RouteSocket,
    cs: &RouteSocket,
) -> Result<WorkloadInterfaces, NetlinkError> {
    let addrs = host_prefixes(spec.addresses);
    let (has_v4, has_v6) = families(&addrs);

    let step = "reading back the host side";
    let mut host = lookup(hs, spec.host_if, spec.host_ns).map_err(|e| e.context(step))?;
    let container =
        lookup(cs, spec.container_if, spec.container_ns).map_err(|e| e.context(step))?;

    // udev (MACAddressPolicy=persistent) may overwrite the MAC we gave at creation; re-assert it until it
    // sticks, as Calico does.
    let step = "setting the host-side MAC";
    let deadline = Instant::now() + MAC_TIMEOUT;
    while host.mac != Some(HOST_SIDE_MAC) {
        if Instant::now() > deadline {
            return Err(NetlinkError::new(
                step,
                ErrorKind::Other,
                format!(
                    "{} did not keep MAC {} within {MAC_TIMEOUT:?}",
                    spec.host_if,
                    format_mac(&HOST_SIDE_MAC)
                ),
            ));
        }
        hs.set_link_mac(host.index, HOST_SIDE_MAC)
            .map_err(|e| e.context(step))?;
        sleep(Duration::from_millis(20));
        host = lookup(hs, spec.host_if, spec.host_ns).map_err(|e| e.context(step))?;
    }

    if has_v6 {
        let step = "disabling DAD on the container side";
        let key = format!("net/ipv6/conf/{}/accept_dad", spec.container_if);
        spec.container_ns
            .run(|| sysctl::write(&key, "0"))
            .and_then(|r| r)
            .map_err(|e| e.context(step))?;
    }

    let step = "configuring host-side sysctls";
    spec.host_ns
        .run(|| configure_host_side(spec.host_if, has_v4, has_v6))
        .and_then(|r| r)
        .map_err(|e| e.context(step))?;

    hs.set_link_up(host.index)
        .map_err(|e| e.context("bringing the host side up"))?;
    cs.set_link_up(container.index)
        .map_err(|e| e.context("bringing the container side up"))?;

    if has_v4 {
        let step = "adding the container's IPv4 routes";
        cs.add_route(&gateway_route(container.index))
            .map_err(|e| e.context(step))?;
        cs.add_route(&default_v4(container.index))
            .map_err(|e| e.context(step))?;
    }

    if has_v6 {
        let step = "enabling IPv6 in the container";
        spec.container_ns
            .run(|| {
                for key in [
                    "net/ipv6/conf/all/disable_ipv6",
                    "net/ipv6/conf/default/disable_ipv6",
                    "net/ipv6/conf/lo/disable_ipv6",
                ] {
                    sysctl::write(key, "0")?;
                }
                Ok(())
            })
            .and_then(|r| r)
            .map_err(|e| e.context(step))?;
        let step = "adding the container's IPv6 default route";
        let gw = wait_host_link_local(hs, host.index).map_err(|e| e.context(step))?;
        cs.add_route(&default_v6(container.index, gw))
            .map_err(|e| e.context(step))?;
    }

    for addr in &addrs {
        // NODAD: the pod may bind its IPv6 address the moment CNI ADD returns.
        cs.add_address_nodad(container.index, *addr)
            .map_err(|e| e.context("adding the container's addresses"))?;
    }

    for addr in &addrs {
        add_host_route(hs, &host, *addr, spec.host_route_protocol)
            .map_err(|e| e.context("adding the host routes"))?;
    }

    // Read back the container MAC the kernel (or the caller) settled on.
    let container = lookup(cs, spec.container_if, spec.container_ns)
        .map_err(|e| e.context("reading back the container side"))?;
    let container_mac = container.mac.ok_or_else(|| {
        NetlinkError::new(
            "reading back the container side",
            ErrorKind::Other,
            format!("{} has no MAC address", spec.container_if),
        )
    })?;
    Ok(WorkloadInterfaces {
        host_index: host.index,
        host_mac: HOST_SIDE_MAC,
        container_index: container.index,
        container_mac,
    })
}

fn lookup(sock: &RouteSocket, name: &str, ns: &NetNs) -> Result<Link, NetlinkError> {
    sock.link_by_name(name)?.ok_or_else(|| {
        NetlinkError::new(
            format!("looking up link {name}"),
            ErrorKind::NotFound,
            format!("no such link in {}", ns.path().display()),
        )
    })
}

/// `169.254.1.1 dev <eth0> scope link`.
fn gateway_route(container_index: u32) -> Route {
    Route::link_scope(
        IpNet::from(IpAddr::V4(IPV4_GATEWAY)),
        container_index,
        RTPROT_BOOT,
    )
}

/// `default via 169.254.1.1 dev <eth0>`.
fn default_v4(container_index: u32) -> Route {
    Route::via(
        IpNet::V4(ipnet::Ipv4Net::default()),
        IpAddr::V4(IPV4_GATEWAY),
        container_index,
        RTPROT_BOOT,
    )
}

/// `default via <gw> dev <eth0>`, IPv6.
fn default_v6(container_index: u32, gw: Ipv6Addr) -> Route {
    Route::via(
        IpNet::V6(ipnet::Ipv6Net::default()),
        IpAddr::V6(gw),
        container_index,
        RTPROT_BOOT,
    )
}

fn is_link_local_v6(ip: &IpAddr) -> Option<Ipv6Addr> {
    match ip {
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some(*v6),
        _ => None,
    }
}

/// The host side's IPv6 link-local address, once the kernel has assigned it (it appears when the link
/// gets carrier). It is `fe80::ecee:eeff:feee:eeee` unless the host uses another address generation mode;
/// like Calico, we route via whatever the host side really has.
fn wait_host_link_local(hs: &RouteSocket, host_index: u32) -> Result<Ipv6Addr, NetlinkError> {
    let deadline = Instant::now() + LINK_LOCAL_TIMEOUT;
    loop {
        let found = hs
            .addresses(Some(host_index))?
            .iter()
            .find_map(|a| is_link_local_v6(&a.addr.addr()));
        if let Some(ll) = found {
            return Ok(ll);
        }
        if Instant::now() > deadline {
            return Err(NetlinkError::new(
                "waiting for the host side's IPv6 link-local address",
                ErrorKind::Other,
                format!("none appeared within {LINK_LOCAL_TIMEOUT:?}"),
            ));
        }
        sleep(Duration::from_millis(10));
    }
}

/// Calico's `SetupRoutes`: `<ip>/32 dev caliX scope link`. EEXIST is fine when the existing route is the
/// same (same interface and scope); otherwise the error names the interface that owns the destination.
fn add_host_route(
    hs: &RouteSocket,
    host: &Link,
    dst: IpNet,
    protocol: u8,
) -> Result<(), NetlinkError> {
    let route = Route::link_scope(dst, host.index, protocol);
    match hs.add_route(&route) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::Exists => {
            let existing = hs.routes(&RouteFilter {
                v4: dst.addr().is_ipv4(),
                v6: dst.addr().is_ipv6(),
                table: Some(RT_TABLE_MAIN),
                protocol: None,
                oif: None,
            })?;
            let same_dst: Vec<&Route> = existing.iter().filter(|r| r.dst == dst).collect();
            if same_dst
                .iter()
                .any(|r| r.oif == Some(host.index) && r.scope == route.scope)
            {
                return Ok(());
            }
            let owner = match same_dst.first() {
                Some(r) => match r.oif {
                    Some(oif) => format!("route {dst} dev {}", hs.describe_index(oif)),
                    None => format!("route {r}"),
                },
                None => "an unknown route".to_string(),
            };
            Err(NetlinkError::new(
                format!("adding route {dst} dev {} scope link", host.name),
                ErrorKind::Exists,
                format!(
                    "the destination already has a route through an interface other than {}: {owner}",
                    host.name
                ),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Calico's `CleanUpNamespace` (plus the host side): deletes the container-side interface in
/// `container_ns` (which takes the host side, its routes and sysctls with it), then the host side if it is
/// still there (the container namespace may be gone already, or the pair broken). Idempotent: returns
/// `Ok(false)` when there was nothing to delete, including when `container_ns` is `None`.
pub fn teardown_workload(
    host_ns: &NetNs,
    container_ns: Option<&NetNs>,
    host_if: &str,
    container_if: &str,
) -> Result<bool, NetlinkError> {
    let label = format!(
        "tearing down workload {}",
        workload_label(host_if, container_if)
    );
    let mut deleted = false;
    if let Some(cns) = container_ns {
        let cs = RouteSocket::open_in(cns).map_err(|e| e.context(&label))?;
        deleted |= cs
            .delete_link(container_if)
            .map_err(|e| e.context(format!("{label}: deleting the container side")))?;
    }
    let hs = RouteSocket::open_in(host_ns).map_err(|e| e.context(&label))?;
    deleted |= hs
        .delete_link(host_if)
        .map_err(|e| e.context(format!("{label}: deleting the host side")))?;
    Ok(deleted)
}

/// Verifies a workload set up by [`setup_workload`] is intact: both links exist, are veths paired with
/// each other, are up, have the MTU (when `spec.mtu != 0`) and MACs (host `ee:..`, container as asked),
/// the host-side sysctls hold, the container has its addresses, its gateway route and default route(s),
/// and the host has a scope-link route per address through `host_if` (any protocol: Felix may re-own it).
/// The error lists every mismatch, separated by `; `.
pub fn check_workload(spec: &WorkloadSpec<'_>) -> Result<WorkloadInterfaces, NetlinkError> {
    let label = format!(
        "checking workload {}",
        workload_label(spec.host_if, spec.container_if)
    );
    validate(spec, &label)?;
    let hs = RouteSocket::open_in(spec.host_ns).map_err(|e| e.context(&label))?;
    let cs = RouteSocket::open_in(spec.container_ns).map_err(|e| e.context(&label))?;
    let addrs = host_prefixes(spec.addresses);
    let (has_v4, has_v6) = families(&addrs);
    let mut problems: Vec<String> = Vec::new();
    let mut missing_link = false;

    let host = hs
        .link_by_name(spec.host_if)
        .map_err(|e| e.context(&label))?;
    let container = cs
        .link_by_name(spec.container_if)
        .map_err(|e| e.context(&label))?;

    let mut check_link =
        |link: &Option<Link>, side: &str, name: &str, want_mac: Option<MacAddr>| {
            let Some(l) = link else {
                problems.push(format!("{side} interface {name} does not exist"));
                missing_link = true;
                return;
            };
            if l.kind.as_deref() != Some("veth") {
                problems.push(format!(
                    "{side} interface {name} is a {} device, not a veth",
                    l.kind.as_deref().unwrap_or("physical/unknown")
                ));
            }
            if !l.admin_up {
                problems.push(format!("{side} interface {name} is down"));
            }
            if spec.mtu != 0 && l.mtu != spec.mtu {
                problems.push(format!(
                    "{side} interface {name} has MTU {}, expected {}",
                    l.mtu, spec.mtu
                ));
            }
            if let Some(want) = want_mac
                && l.mac != Some(want)
            {
                problems.push(format!(
                    "{side} interface {name} has MAC {}, expected {}",
                    l.mac
                        .map(|m| format_mac(&m))
                        .unwrap_or_else(|| "none".into()),
                    format_mac(&want)
                ));
            }
        };
    check_link(&host, "host", spec.host_if, Some(HOST_SIDE_MAC));
    check_link(
        &container,
        "container",
        spec.container_if,
        spec.container_mac,
    );

    if let (Some(h), Some(c)) = (&host, &container)
        && spec.mtu == 0
        && h.mtu != c.mtu
    {
        problems.push(format!(
            "host interface {} has MTU {} but container interface {} has MTU {}",
            h.name, h.mtu, c.name, c.mtu
        ));
    }
    if let (Some(h), Some(c)) = (&host, &container)
        && (h.peer_index != Some(c.index) || c.peer_index != Some(h.index))
    {
        problems.push(format!(
            "{} and {} are not the two ends of one veth pair",
            spec.host_if, spec.container_if
        ));
    }

    if let Some(h) = &host {
        // Host-side sysctls (what configure_host_side wrote).
        let mut expected: Vec<(String, &str)> = Vec::new();
        if has_v4 {
            for (key, value) in [
                ("route_localnet", "1"),
                ("proxy_arp", "1"),
                ("forwarding", "1"),
            ] {
                expected.push((format!("net/ipv4/conf/{}/{key}", h.name), value));
            }
        }
        if has_v6 {
            for (key, value) in [("proxy_ndp", "1"), ("forwarding", "1")] {
                expected.push((format!("net/ipv6/conf/{}/{key}", h.name), value));
            }
        }
        let found = spec
            .host_ns
            .run(|| {
                expected
                    .iter()
                    .map(|(k, v)| (k.clone(), *v, sysctl::read(k)))
                    .collect::<Vec<_>>()
            })
            .map_err(|e| e.context(&label))?;
        for (key, want, got) in found {
            match got {
                Ok(v) if v == want => {}
                Ok(v) => problems.push(format!("host sysctl {key} is {v}, expected {want}")),
                Err(e) => problems.push(format!("host sysctl {key} unreadable: {}", e.detail())),
            }
        }

        let host_routes = hs
            .routes(&RouteFilter {
                v4: true,
                v6: true,
                table: Some(RT_TABLE_MAIN),
                protocol: None,
                oif: Some(h.index),
            })
            .map_err(|e| e.context(&label))?;
        for a in &addrs {
            let ok = host_routes.iter().any(|r| {
                r.dst == *a
                    && r.gateway.is_none()
                    && (r.scope == RouteScope::Link || a.addr().is_ipv6())
            });
            if !ok {
                problems.push(format!(
                    "host route {a} dev {} scope link is missing",
                    h.name
                ));
            }
        }
    }

    if let Some(c) = &container {
        let have: Vec<IpNet> = cs
            .addresses(Some(c.index))
            .map_err(|e| e.context(&label))?
            .into_iter()
            .map(|a| a.addr)
            .collect();
        for a in &addrs {
            if !have.contains(a) {
                problems.push(format!("container address {a} is missing from {}", c.name));
            }
        }
        let routes = cs
            .routes(&RouteFilter {
                v4: true,
                v6: true,
                table: Some(RT_TABLE_MAIN),
                protocol: None,
                oif: Some(c.index),
            })
            .map_err(|e| e.context(&label))?;
        if has_v4 {
            let gw = gateway_route(c.index);
            if !routes
                .iter()
                .any(|r| r.dst == gw.dst && r.scope == RouteScope::Link && r.gateway.is_none())
            {
                problems.push(format!(
                    "container route {IPV4_GATEWAY} dev {} scope link is missing",
                    c.name
                ));
            }
            if !routes.iter().any(|r| {
                r.dst.prefix_len() == 0
                    && r.dst.addr().is_ipv4()
                    && r.gateway == Some(IpAddr::V4(IPV4_GATEWAY))
            }) {
                problems.push(format!(
                    "container default route via {IPV4_GATEWAY} dev {} is missing",
                    c.name
                ));
            }
        }
        if has_v6 {
            let host_lls: Vec<Ipv6Addr> = match &host {
                Some(h) => hs
                    .addresses(Some(h.index))
                    .map_err(|e| e.context(&label))?
                    .iter()
                    .filter_map(|a| is_link_local_v6(&a.addr.addr()))
                    .collect(),
                None => vec![IPV6_GATEWAY],
            };
            if !routes.iter().any(|r| {
                r.dst.prefix_len() == 0
                    && r.dst.addr().is_ipv6()
                    && r.gateway
                        .and_then(|g| is_link_local_v6(&g))
                        .is_some_and(|g| host_lls.contains(&g) || g == IPV6_GATEWAY)
            }) {
                problems.push(format!(
                    "container IPv6 default route via the host side's link-local address dev {} is missing",
                    c.name
                ));
            }
        }
    }

    match (problems.is_empty(), host, container) {
        (true, Some(h), Some(c)) => Ok(WorkloadInterfaces {
            host_index: h.index,
            host_mac: h.mac.unwrap_or(HOST_SIDE_MAC),
            container_index: c.index,
            container_mac: c.mac.unwrap_or_default(),
        }),
        _ => Err(NetlinkError::new(
            label,
            if missing_link {
                ErrorKind::NotFound
            } else {
                ErrorKind::Other
            },
            problems.join("; "),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_narrowed_like_calico() {
        let input: Vec<IpNet> = vec![
            "10.244.220.81/26".parse().unwrap(),
            "fd00:1::5/122".parse().unwrap(),
        ];
        let out = host_prefixes(&input);
        assert_eq!(
            out,
            vec![
                "10.244.220.81/32".parse::<IpNet>().unwrap(),
                "fd00:1::5/128".parse().unwrap()
            ]
        );
        assert_eq!(families(&out), (true, true));
        assert_eq!(families(&out[..1]), (true, false));
    }

    #[test]
    fn gateways() {
        // EUI-64 of ee:ee:ee:ee:ee:ee: flip the U/L bit of 0xee (-> 0xec), insert ff:fe.
        assert_eq!(IPV6_GATEWAY.to_string(), "fe80::ecee:eeff:feee:eeee");
        let r = default_v4(3);
        assert_eq!(r.to_string(), "0.0.0.0/0 via 169.254.1.1 dev #3 proto 3");
        assert_eq!(
            gateway_route(3).to_string(),
            "169.254.1.1/32 dev #3 proto 3 scope link"
        );
        assert_eq!(
            default_v6(3, IPV6_GATEWAY).to_string(),
            "::/0 via fe80::ecee:eeff:feee:eeee dev #3 proto 3"
        );
        assert!(is_link_local_v6(&"fe80::1".parse().unwrap()).is_some());
        assert!(is_link_local_v6(&"fd00::1".parse().unwrap()).is_none());
    }
}
