//! Host endpoints on real traffic: the scenario cluster of [`super::PolicyCluster`] plus
//! servers on each node's own address, probed between pods and hosts in every combination.
//!
//! The expected verdicts still come from `calico-policy-eval`, but a packet between nodes
//! crosses more of Felix's chains than [`calico_policy_eval::evaluate`] composes (it judges
//! the normal chains of the two endpoints owning the packet's addresses): the host endpoints
//! on the nodes' fabric interfaces add untracked (raw), pre-DNAT (mangle) and forward
//! (`applyOnForward`) stages. [`felix_path_verdict`] asks the evaluator for each stage on
//! the packet's path ([`calico_policy_eval::evaluate_chain`]) and combines the answers the
//! way Felix's static chains do (`felix/rules/static.go`):
//!
//! - raw PREROUTING / OUTPUT (`StaticRawPreroutingChain`, `StaticRawOutputChain`): an
//!   untracked Allow sets the accept mark and NOTRACKs the packet; later stages that check
//!   the mark (mangle PREROUTING, `acceptAlreadyAccepted` in filter INPUT / OUTPUT, the
//!   `MarkClear(MarkAccept)` guard before the forward host-endpoint dispatch) let it
//!   through. Its reply is untracked too, so it must be allowed by untracked policy in the
//!   other direction (Calico's doNotTrack documentation: "return traffic must be allowed
//!   explicitly"); a tracked reply of an untracked TCP or ICMP request is INVALID to
//!   conntrack (no SYN / echo request seen) and dropped, a UDP one starts a new flow.
//! - mangle PREROUTING (`StaticManglePreroutingChain`): pre-DNAT policy of the ingress host
//!   endpoint; Allow sets the accept mark (filter INPUT then accepts, FORWARD skips the
//!   forward host-endpoint chain but still runs the workload's ingress policy).
//! - filter FORWARD (`StaticFilterForwardChains`): from-host-endpoint forward chain, workload
//!   chains, to-host-endpoint forward chain; a Deny anywhere drops, the workload chains
//!   decide for pods.
//! - filter INPUT / OUTPUT: the normal host-endpoint chains (failsafes first), or for traffic
//!   between a workload and its own host the static workload-to-host / host-to-workload
//!   rules, which `evaluate` models.
//!
//! In raw and mangle a failsafe port is accepted without the accept mark (`failsafeInChain`
//! in those tables ends only that hook), so the packet goes on to the filter stage where the
//! failsafe accepts it again: a failsafe answer of an untracked or pre-DNAT chain counts as
//! "no verdict" here.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use calico_policy_eval::{
    ChainType, DecidedBy, Direction, EvalConfig, Packet, PolicySet, Verdict, evaluate,
    evaluate_chain,
};

use super::{PolicyCluster, stored_resources};
use crate::HarnessError;
use crate::cluster::calicoctl;
use crate::node::Node;
use crate::reach::{Cell, Matrix, Proto, Servers, Target};

/// Each node's fabric interface (see [`crate::node::Node::new`]): every packet between
/// nodes crosses it.
pub const FABRIC_IFACE: &str = "eth0";

/// The ports each node serves (TCP and UDP) on its own address: 22 is a default inbound
/// failsafe port (`FailsafeInboundHostPorts`, tcp:22), 80 and 81 are not.
pub const HOST_PORTS: [u16; 3] = [22, 80, 81];

/// One end of a probe: the node it is on, and whether it is the node's own address (else a
/// pod on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End<'a> {
    pub node: &'a str,
    pub host: bool,
}

/// A host endpoint on a node's fabric interface (or on every interface, `interfaceName:
/// "*"`), by its name (the evaluator's endpoint key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricEndpoint {
    pub name: String,
    pub node: String,
}

/// Felix's verdict for one packet and the stages that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathVerdict {
    pub allowed: bool,
    /// The stages consulted, in path order (for failure messages).
    pub why: String,
}

/// The reply to `p`: addresses and ports swapped, an echo request answered by an echo reply.
pub fn reply_of(p: &Packet) -> Packet {
    let mut r = *p;
    r.src = p.dst;
    r.dst = p.src;
    r.src_port = p.dst_port;
    r.dst_port = p.src_port;
    r.icmp_type = p.icmp_type.map(|t| match t {
        8 => 0,
        128 => 129,
        other => other,
    });
    r
}

fn failed(e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Failed(e.to_string())
}

/// One stage of a host endpoint for `packet`. Failsafe accepts in the raw and mangle stages
/// end only that hook (module docs), so they count as no verdict.
fn stage(
    set: &PolicySet,
    hep: &FabricEndpoint,
    dir: Direction,
    chain: ChainType,
    packet: &Packet,
    why: &mut Vec<String>,
) -> Result<Option<Verdict>, HarnessError> {
    let r = evaluate_chain(set, &hep.name, dir, chain, packet).map_err(failed)?;
    let verdict = match r.decided_by {
        DecidedBy::Failsafe { .. }
            if matches!(chain, ChainType::Untracked | ChainType::PreDnat) =>
        {
            None
        }
        _ => r.verdict,
    };
    if verdict.is_some() || chain == ChainType::Normal {
        why.push(r.to_string());
    }
    Ok(verdict)
}

/// Whether the reply of an untracked request passes `hep` in `dir` (module docs).
fn untracked_reply_passes(
    set: &PolicySet,
    hep: &FabricEndpoint,
    dir: Direction,
    request: &Packet,
    why: &mut Vec<String>,
) -> Result<bool, HarnessError> {
    let reply = reply_of(request);
    match stage(set, hep, dir, ChainType::Untracked, &reply, why)? {
        Some(v) => Ok(v == Verdict::Allow),
        // Conntrack never saw the request: a UDP reply is a new flow judged by normal
        // policy; a TCP SYN-ACK or an ICMP echo reply as a flow's first packet is INVALID.
        None if reply.protocol == 17 => {
            Ok(stage(set, hep, dir, ChainType::Normal, &reply, why)? == Some(Verdict::Allow))
        }
        None => {
            why.push(format!(
                "reply {reply} of an untracked request is not untracked: conntrack INVALID"
            ));
            Ok(false)
        }
    }
}

/// Felix's verdict for `packet` from `src` to `dst` on a cluster whose fabric host
/// endpoints are `fabric` (module docs). Traffic within one node is what
/// [`calico_policy_eval::evaluate`] says (it models the host ↔ own-workload paths when the
/// set knows the node addresses).
pub fn felix_path_verdict(
    set: &PolicySet,
    fabric: &[FabricEndpoint],
    src: End<'_>,
    dst: End<'_>,
    packet: &Packet,
) -> Result<PathVerdict, HarnessError> {
    let decision = evaluate(set, packet);
    if src.node == dst.node {
        return Ok(PathVerdict {
            allowed: decision.overall == Verdict::Allow,
            why: decision.to_string(),
        });
    }
    let mut why = Vec::new();
    let deny = |why: Vec<String>| PathVerdict {
        allowed: false,
        why: why.join(" | "),
    };
    let hep_on = |node: &str| fabric.iter().find(|h| h.node == node);
    // Whether the normal (filter) chain of each end still applies.
    let (mut src_normal, mut dst_normal) = (true, true);

    // Leaving the source node by its fabric interface.
    if let Some(h) = hep_on(src.node) {
        if src.host {
            // raw OUTPUT.
            match stage(
                set,
                h,
                Direction::Egress,
                ChainType::Untracked,
                packet,
                &mut why,
            )? {
                Some(Verdict::Deny) => return Ok(deny(why)),
                Some(Verdict::Allow) => {
                    src_normal = false;
                    if !untracked_reply_passes(set, h, Direction::Ingress, packet, &mut why)? {
                        return Ok(deny(why));
                    }
                }
                None => {}
            }
        } else if stage(
            set,
            h,
            Direction::Egress,
            ChainType::Forward,
            packet,
            &mut why,
        )? == Some(Verdict::Deny)
        {
            // filter FORWARD, to-host-endpoint forward chain.
            return Ok(deny(why));
        }
    }

    // Arriving at the destination node by its fabric interface.
    if let Some(h) = hep_on(dst.node) {
        // raw PREROUTING.
        match stage(
            set,
            h,
            Direction::Ingress,
            ChainType::Untracked,
            packet,
            &mut why,
        )? {
            Some(Verdict::Deny) => return Ok(deny(why)),
            Some(Verdict::Allow) => {
                if !dst.host {
                    return Err(HarnessError::Failed(format!(
                        "untracked policy of {} allows forwarded traffic ({packet}): the reply \
                         through the workload interface is not modelled",
                        h.name
                    )));
                }
                // Mangle PREROUTING and filter INPUT accept on the mark.
                dst_normal = false;
                if !untracked_reply_passes(set, h, Direction::Egress, packet, &mut why)? {
                    return Ok(deny(why));
                }
            }
            None => {
                // Mangle PREROUTING: pre-DNAT policy.
                let pre = stage(
                    set,
                    h,
                    Direction::Ingress,
                    ChainType::PreDnat,
                    packet,
                    &mut why,
                )?;
                match pre {
                    Some(Verdict::Deny) => return Ok(deny(why)),
                    // Filter INPUT accepts on the mark; FORWARD skips the from-host-endpoint
                    // forward chain (the workload's ingress policy still runs).
                    Some(Verdict::Allow) => {
                        if dst.host {
                            dst_normal = false;
                        }
                    }
                    None => {
                        if !dst.host
                            && stage(
                                set,
                                h,
                                Direction::Ingress,
                                ChainType::Forward,
                                packet,
                                &mut why,
                            )? == Some(Verdict::Deny)
                        {
                            return Ok(deny(why));
                        }
                    }
                }
            }
        }
    }

    // The normal chains of the two ends (workload policy, host endpoint policy).
    for (applies, side) in [
        (src_normal, &decision.egress_of_src_endpoint),
        (dst_normal, &decision.ingress_of_dst_endpoint),
    ] {
        if let (true, Some(r)) = (applies, side) {
            why.push(r.to_string());
            if r.verdict != Some(Verdict::Allow) {
                return Ok(deny(why));
            }
        }
    }
    Ok(PathVerdict {
        allowed: true,
        why: why.join(" | "),
    })
}

/// The probes' packets, as the evaluator sees them.
pub fn packet(proto: Proto, src: IpAddr, dst: IpAddr, port: u16) -> Result<Packet, HarnessError> {
    let (s, d) = (src.to_string(), dst.to_string());
    match proto {
        Proto::Tcp => Packet::tcp(&s, &d, port),
        Proto::Udp => Packet::udp(&s, &d, port),
        // Echo request: type 8 (ICMPv6: 128).
        Proto::Icmp => Packet::icmp(&s, &d, if src.is_ipv4() { 8 } else { 128 }, 0),
    }
    .map_err(failed)
}

/// A node's own address (its fabric interface's).
pub fn node_ip(node: &Node) -> Result<IpAddr, HarnessError> {
    node.address
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| HarnessError::Failed(format!("node address {:?}", node.address)))
}

/// [`PolicyCluster`] plus TCP / UDP servers on [`HOST_PORTS`] of each node's own address.
/// Drop order: the host servers, then the cluster.
pub struct HostPolicyCluster {
    _host_servers: Vec<Servers>,
    pub pc: PolicyCluster,
    /// The Felix settings the expected verdicts assume: Felix's defaults, except
    /// `DefaultEndpointToHostAction`, which comes from the stored `node.<name>`
    /// FelixConfigurations (calico-node's start-up writes `Return` there, as Calico's does);
    /// a scenario that overrides a setting changes this to match.
    pub config: EvalConfig,
}

/// The expected matrix with the stages behind each verdict.
pub struct Expected {
    pub matrix: Matrix,
    pub why: BTreeMap<Cell, String>,
}

impl HostPolicyCluster {
    /// Starts the cluster (see [`PolicyCluster::start`]) and the host servers.
    pub fn start() -> Result<HostPolicyCluster, HarnessError> {
        let pc = PolicyCluster::start()?;
        let mut servers = Vec::new();
        for n in &pc.cluster.nodes {
            servers.push(Servers::start(n.ns.ns(), node_ip(n)?, &HOST_PORTS)?);
        }
        let config = stored_endpoint_to_host_config(&pc)?;
        Ok(HostPolicyCluster {
            _host_servers: servers,
            pc,
            config,
        })
    }

    /// Every pod (by its key) and every node (by its name), with where it is.
    fn places(&self) -> Result<Vec<(Target<'_>, End<'_>)>, HarnessError> {
        let mut out = Vec::new();
        for p in &self.pc.pods {
            out.push((
                Target {
                    name: p.key.clone(),
                    ns: p.pod.ns.ns(),
                    ip: p.pod.ip,
                },
                End {
                    node: &p.node,
                    host: false,
                },
            ));
        }
        for n in &self.pc.cluster.nodes {
            out.push((
                Target {
                    name: n.name.clone(),
                    ns: n.ns.ns(),
                    ip: node_ip(n)?,
                },
                End {
                    node: &n.name,
                    host: true,
                },
            ));
        }
        Ok(out)
    }

    /// The probes from `a` to `b`: TCP / UDP 80 and 81 and ICMP echo between any two places,
    /// plus TCP 22 between hosts (a failsafe port inbound, not outbound).
    fn probes(a: &End<'_>, b: &End<'_>) -> Vec<(Proto, u16)> {
        let mut p = PolicyCluster::probes();
        if a.host && b.host {
            p.push((Proto::Tcp, 22));
        }
        p
    }

    /// Observes the matrix over every ordered pair of places.
    pub fn observe(&self) -> Result<Matrix, HarnessError> {
        let places = self.places()?;
        let mut jobs = Vec::new();
        for (ta, ea) in &places {
            for (tb, eb) in &places {
                if ta.name != tb.name {
                    for (proto, port) in Self::probes(ea, eb) {
                        jobs.push((ta, tb, proto, port));
                    }
                }
            }
        }
        Matrix::probe_jobs(&jobs, Duration::from_millis(700), 48)
    }

    /// The host endpoints on the fabric interface (or on all interfaces) of each node, as
    /// stored.
    pub fn fabric_endpoints(&self) -> Result<Vec<FabricEndpoint>, HarnessError> {
        let out = calicoctl(&self.pc.store(), &["get", "hostendpoints", "-o", "json"])?;
        let v: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| HarnessError::Failed(format!("calicoctl get hostendpoints: {e}")))?;
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let mut heps = Vec::new();
        for h in items {
            let iface = h["spec"]["interfaceName"].as_str().unwrap_or_default();
            let node = h["spec"]["node"].as_str().unwrap_or_default();
            // Without an interface name, an endpoint governs the interface holding one of its
            // expected IPs: the fabric interface when it names the node's address.
            let node_addr = self
                .pc
                .cluster
                .nodes
                .iter()
                .find(|n| n.name == node)
                .and_then(|n| node_ip(n).ok())
                .map(|a| a.to_string());
            let on_fabric_by_ip = iface.is_empty()
                && h["spec"]["expectedIPs"]
                    .as_array()
                    .is_some_and(|ips| ips.iter().any(|ip| ip.as_str() == node_addr.as_deref()));
            if iface == FABRIC_IFACE || iface == "*" || on_fabric_by_ip {
                heps.push(FabricEndpoint {
                    name: h["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    node: h["spec"]["node"].as_str().unwrap_or_default().to_string(),
                });
            }
        }
        Ok(heps)
    }

    /// What Felix does with each probe, by the evaluator's verdicts over the stored
    /// resources (with [`HostPolicyCluster::config`]: failsafe ports, endpoint-to-host
    /// action) and each node's address known as a host address.
    pub fn expected(&self) -> Result<Expected, HarnessError> {
        let mut res = stored_resources(&self.pc.store())?;
        res.config = self.config.clone();
        for n in &self.pc.cluster.nodes {
            res.host_addresses
                .entry(n.name.clone())
                .or_default()
                .push(node_ip(n)?);
        }
        let set = PolicySet::from_resources(res).map_err(failed)?;
        let fabric = self.fabric_endpoints()?;
        let places = self.places()?;
        let mut matrix = Matrix::default();
        let mut why = BTreeMap::new();
        for (ta, ea) in &places {
            for (tb, eb) in &places {
                if ta.name == tb.name {
                    continue;
                }
                for (proto, port) in Self::probes(ea, eb) {
                    let pkt = packet(proto, ta.ip, tb.ip, port)?;
                    let v = felix_path_verdict(&set, &fabric, *ea, *eb, &pkt)?;
                    let cell = Cell {
                        from: ta.name.clone(),
                        to: tb.name.clone(),
                        proto,
                        port,
                    };
                    matrix.cells.insert(cell.clone(), v.allowed);
                    why.insert(cell, v.why);
                }
            }
        }
        Ok(Expected { matrix, why })
    }

    /// Waits until the observed matrix equals the expected one; on timeout the error lists
    /// each differing probe with the stages behind its expected verdict, and the agents'
    /// logs. Returns the matrix reached.
    pub fn wait_for_expected(
        &self,
        scenario: &str,
        timeout: Duration,
    ) -> Result<Matrix, HarnessError> {
        let expected = self.expected()?;
        let deadline = Instant::now() + timeout;
        loop {
            let observed = self.observe()?;
            let diff = observed.differences(&expected.matrix);
            if diff.is_empty() {
                return Ok(observed);
            }
            if Instant::now() >= deadline {
                let mut detail = String::new();
                for (cell, want) in &expected.matrix.cells {
                    if observed.cells.get(cell) != Some(want) {
                        detail.push_str(&format!(
                            "{} -> {} {}/{}: {}\n",
                            cell.from,
                            cell.to,
                            cell.proto,
                            cell.port,
                            expected.why.get(cell).map_or("", String::as_str)
                        ));
                    }
                }
                return Err(HarnessError::Failed(format!(
                    "{scenario}: the observed reachability never matched the expected one within {timeout:?}:\n{diff}\nexpected because:\n{detail}\nagent logs:\n{}",
                    self.pc.cluster.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The node's `inet calico` table as `nft list` prints it (for reports).
    pub fn nft_table(&self, node: usize) -> Result<String, HarnessError> {
        let n = &self.pc.cluster.nodes[node];
        crate::run_checked(
            std::process::Command::new(crate::which("nsenter")?)
                .arg(format!("--net={}", n.netns_path().display()))
                .args(["nft", "list", "table", "inet", "calico"]),
        )
    }
}

/// Felix's defaults with the `defaultEndpointToHostAction` the agents read from their
/// `node.<name>` FelixConfigurations (all nodes must agree: the evaluator has one setting).
fn stored_endpoint_to_host_config(pc: &PolicyCluster) -> Result<EvalConfig, HarnessError> {
    let mut config = EvalConfig::default();
    let mut seen: Option<String> = None;
    for n in &pc.cluster.nodes {
        let out = crate::cluster::calicoctl(
            &pc.store(),
            &[
                "get",
                "felixconfiguration",
                &format!("node.{}", n.name),
                "-o",
                "json",
            ],
        )?;
        let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| {
            HarnessError::Failed(format!("felixconfiguration node.{}: {e}", n.name))
        })?;
        let action = v
            .pointer("/spec/defaultEndpointToHostAction")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("Drop")
            .to_string();
        if seen.as_ref().is_some_and(|s| *s != action) {
            return Err(HarnessError::Failed(format!(
                "nodes disagree on defaultEndpointToHostAction ({seen:?} vs {action:?})"
            )));
        }
        seen = Some(action);
    }
    config.default_endpoint_to_host_action = match seen.as_deref().unwrap_or("Drop") {
        "Return" => calico_policy_eval::EndpointToHostAction::Return,
        "Accept" => calico_policy_eval::EndpointToHostAction::Accept,
        _ => calico_policy_eval::EndpointToHostAction::Drop,
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use calico_policy_eval::Resources;

    use super::*;

    const HEP: &str = "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\n\
        metadata: {name: node1-eth0, labels: {role: fabric}}\n\
        spec: {node: node1, interfaceName: eth0, expectedIPs: [10.200.0.1]}\n";
    const WEPS: &str = "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\n\
        metadata: {name: node1-k8s-a-eth0, namespace: x, labels: {projectcalico.org/orchestrator: k8s}}\n\
        spec: {node: node1, orchestrator: k8s, endpoint: eth0, pod: a, interfaceName: cali1, \
        ipNetworks: [10.244.1.1/32], profiles: [kns.x]}\n---\n\
        apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\n\
        metadata: {name: node2-k8s-b-eth0, namespace: x, labels: {projectcalico.org/orchestrator: k8s}}\n\
        spec: {node: node2, orchestrator: k8s, endpoint: eth0, pod: b, interfaceName: cali2, \
        ipNetworks: [10.244.2.1/32], profiles: [kns.x]}\n---\n\
        apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: kns.x}\n\
        spec: {ingress: [{action: Allow}], egress: [{action: Allow}]}\n";

    fn set(extra: &str) -> PolicySet {
        let mut res = Resources::from_yaml(&format!("{HEP}---\n{WEPS}---\n{extra}")).unwrap();
        res.host_addresses
            .insert("node2".into(), vec!["10.200.0.2".parse().unwrap()]);
        PolicySet::from_resources(res).unwrap()
    }

    fn fabric() -> Vec<FabricEndpoint> {
        vec![FabricEndpoint {
            name: "node1-eth0".into(),
            node: "node1".into(),
        }]
    }

    const N1: End<'static> = End {
        node: "node1",
        host: true,
    };
    const N2: End<'static> = End {
        node: "node2",
        host: true,
    };
    const A: End<'static> = End {
        node: "node1",
        host: false,
    };
    const B: End<'static> = End {
        node: "node2",
        host: false,
    };

    fn allowed(set: &PolicySet, src: End<'_>, dst: End<'_>, p: Packet) -> bool {
        felix_path_verdict(set, &fabric(), src, dst, &p)
            .unwrap()
            .allowed
    }

    fn tcp(s: &str, d: &str, port: u16) -> Packet {
        Packet::tcp(s, d, port).unwrap()
    }

    #[test]
    fn a_host_endpoint_without_policy_denies_all_but_failsafes_and_forwarding() {
        let s = set("");
        assert!(!allowed(&s, N2, N1, tcp("10.200.0.2", "10.200.0.1", 80)));
        assert!(allowed(&s, N2, N1, tcp("10.200.0.2", "10.200.0.1", 22)));
        // 22 is an inbound failsafe port only.
        assert!(!allowed(&s, N1, N2, tcp("10.200.0.1", "10.200.0.2", 22)));
        assert!(allowed(&s, N1, N2, tcp("10.200.0.1", "10.200.0.2", 179)));
        // Forwarded pod traffic: no applyOnForward policy, allowed.
        assert!(allowed(&s, B, A, tcp("10.244.2.1", "10.244.1.1", 81)));
        assert!(allowed(&s, A, B, tcp("10.244.1.1", "10.244.2.1", 81)));
        // A pod on node2 to node1's address meets the host endpoint's ingress policy.
        assert!(!allowed(&s, B, N1, tcp("10.244.2.1", "10.200.0.1", 80)));
        // The workload-to-own-host path: DefaultEndpointToHostAction Drop.
        assert!(!allowed(&s, B, N2, tcp("10.244.2.1", "10.200.0.2", 80)));
    }

    #[test]
    fn apply_on_forward_policy_reaches_forwarded_pod_traffic() {
        let s = set(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
            metadata: {name: fwd}\nspec:\n  selector: role == 'fabric'\n  applyOnForward: true\n\
            \x20 types: [Ingress]\n  ingress:\n  - {action: Deny, protocol: TCP, destination: {ports: [81]}}\n\
            \x20 - {action: Allow}\n",
        );
        assert!(!allowed(&s, B, A, tcp("10.244.2.1", "10.244.1.1", 81)));
        assert!(allowed(&s, B, A, tcp("10.244.2.1", "10.244.1.1", 80)));
        // Egress has no applyOnForward policy: forwarded traffic leaving node1 is allowed.
        assert!(allowed(&s, A, B, tcp("10.244.1.1", "10.244.2.1", 81)));
        // The same policy is host policy too.
        assert!(allowed(&s, N2, N1, tcp("10.200.0.2", "10.200.0.1", 80)));
        assert!(!allowed(&s, N2, N1, tcp("10.200.0.2", "10.200.0.1", 81)));
    }

    #[test]
    fn pre_dnat_allow_skips_host_policy_and_deny_drops_forwarded_traffic() {
        let s = set(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
            metadata: {name: pre}\nspec:\n  selector: role == 'fabric'\n  preDNAT: true\n  applyOnForward: true\n\
            \x20 types: [Ingress]\n  ingress:\n  - {action: Deny, protocol: UDP, destination: {ports: [81]}}\n\
            \x20 - {action: Allow, protocol: TCP, destination: {nets: [10.200.0.1/32], ports: [80]}}\n",
        );
        assert!(allowed(&s, N2, N1, tcp("10.200.0.2", "10.200.0.1", 80)));
        assert!(!allowed(&s, N2, N1, tcp("10.200.0.2", "10.200.0.1", 81)));
        let udp = Packet::udp("10.244.2.1", "10.244.1.1", 81).unwrap();
        assert!(!allowed(&s, B, A, udp));
        let udp80 = Packet::udp("10.244.2.1", "10.244.1.1", 80).unwrap();
        assert!(allowed(&s, B, A, udp80));
    }

    #[test]
    fn untracked_requests_need_untracked_replies() {
        let both = set(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
            metadata: {name: raw}\nspec:\n  selector: role == 'fabric'\n  doNotTrack: true\n  applyOnForward: true\n\
            \x20 ingress: [{action: Allow, protocol: TCP, destination: {nets: [10.200.0.1/32], ports: [80]}}]\n\
            \x20 egress: [{action: Allow, protocol: TCP, source: {nets: [10.200.0.1/32], ports: [80]}}]\n",
        );
        assert!(allowed(&both, N2, N1, tcp("10.200.0.2", "10.200.0.1", 80)));
        assert!(!allowed(&both, N2, N1, tcp("10.200.0.2", "10.200.0.1", 81)));
        let one_way = set(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
            metadata: {name: raw}\nspec:\n  selector: role == 'fabric'\n  doNotTrack: true\n  applyOnForward: true\n\
            \x20 types: [Ingress]\n\
            \x20 ingress: [{action: Allow, protocol: TCP, destination: {nets: [10.200.0.1/32], ports: [80]}}]\n",
        );
        let v = felix_path_verdict(
            &one_way,
            &fabric(),
            N2,
            N1,
            &tcp("10.200.0.2", "10.200.0.1", 80),
        )
        .unwrap();
        assert!(!v.allowed);
        assert!(v.why.contains("INVALID"), "{}", v.why);
    }

    #[test]
    fn replies_swap_ends_and_answer_echo_requests() {
        let p = Packet::icmp("10.0.0.1", "10.0.0.2", 8, 0).unwrap();
        let r = reply_of(&p);
        assert_eq!((r.src, r.dst, r.icmp_type), (p.dst, p.src, Some(0)));
        let t = reply_of(&tcp("10.0.0.1", "10.0.0.2", 80));
        assert_eq!((t.src_port, t.dst_port), (Some(80), Some(40_000)));
    }
}
