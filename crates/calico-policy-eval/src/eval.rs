//! The decision for one packet, following the chain structure Felix renders per endpoint
//! (`felix/rules/endpoints.go` `endpointIptablesChain`):
//!
//! 1. host endpoints only: the failsafe chain accepts the failsafe ports (`static.go`
//!    `failsafeInChain` / `failsafeOutChain`; not for forwarded traffic);
//! 2. workload egress only: VXLAN (udp/`VXLANPort`) and IPIP (protocol 4) packets are dropped
//!    unless allowed by configuration;
//! 3. for each tier (in `TierLess` order) with at least one policy applying to the endpoint in
//!    that direction: the pass mark is cleared; each policy (in `PolKVLess` order) runs its
//!    rules in order — `Allow` returns from the whole endpoint chain with a verdict, `Deny`
//!    drops, `Pass` skips the tier's remaining policies, `Log` continues with the next rule,
//!    no match falls through to the next policy. If the tier ends without a pass, it drops
//!    unless its default action is `Pass`;
//! 4. profiles, in the endpoint's order, the same way (a `Pass` in a profile only ends that
//!    profile); if none accepts: "Drop if no profiles matched".
//!
//! Tiers without an applicable policy are skipped. Which policies a chain sees
//! (`felix/calc/event_sequencer.go` `tierInfoToProtoTierInfo`): normal chains exclude
//! `doNotTrack` and `preDNAT` policies; forward chains (host endpoints) only have
//! `applyOnForward` ones and accept when none applies ("Allow forwarded traffic by default");
//! untracked chains only `doNotTrack` ones and pre-DNAT chains only `preDNAT` ingress ones,
//! both with tier default action `Pass` and no profiles, so they may end without a verdict.
//! Workload endpoints only have normal chains.
//!
//! [`evaluate`] judges a packet with the normal chains of its source endpoint (egress) and its
//! destination endpoint (ingress), each found by address. An address that belongs to no
//! endpoint is outside Calico's control: only the other side's policy applies. Connection
//! tracking (return traffic of allowed flows) is not modelled.

use std::fmt;

use calico_policy_rules::{ParsedProfile, ParsedRule, RuleAction};

use crate::PolicyId;
use crate::build::PolicySet;
use crate::error::EvalError;
use crate::matching::rule_matches;
use crate::model::{Direction, Endpoint, EndpointKind, EndpointToHostAction, Packet};

/// The outcome of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Allow => "Allow",
            Verdict::Deny => "Deny",
        })
    }
}

/// Which of Felix's per-endpoint chains is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainType {
    /// Filter-table chains of workload and host endpoints (tiers, then profiles).
    Normal,
    /// Host endpoint chains for forwarded traffic (`applyOnForward` policies).
    Forward,
    /// Raw-table host endpoint chains (`doNotTrack` policies).
    Untracked,
    /// Mangle-table host endpoint ingress chain (`preDNAT` policies).
    PreDnat,
}

/// What decided a chain's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecidedBy {
    /// A rule with action Allow or Deny.
    Rule {
        tier: String,
        policy: PolicyId,
        /// Index in the policy's ingress / egress list.
        rule: usize,
    },
    /// No policy of a tier allowed, denied or passed the packet: end-of-tier drop.
    EndOfTier { tier: String },
    /// A profile rule with action Allow or Deny.
    ProfileRule { profile: String, rule: usize },
    /// No tier decided and no profile accepted: "Drop if no profiles matched".
    NoProfileMatched,
    /// A host-endpoint failsafe entry accepted the packet.
    Failsafe { protocol: u8, port: u16 },
    /// VXLAN / IPIP packets from a workload are dropped before policy.
    EncapFromWorkload,
    /// Forward chain with no applicable policy: "Allow forwarded traffic by default".
    ForwardDefault,
    /// The chain ended without a verdict (untracked / pre-DNAT / forward after passes).
    Nothing,
    /// Host → one of its own workloads: not policed (`static.go` `filterOutputChain`).
    HostToLocalWorkload,
    /// Workload → its own host, after egress policy: `DefaultEndpointToHostAction`.
    EndpointToHost(EndpointToHostAction),
    /// Workload → its own host, ICMPv6 types 130-133, 135, 136: accepted before egress
    /// policy (`static.go` `ICMPv6Filter`).
    WorkloadToHostIcmpv6,
}

impl fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecidedBy::Rule { tier, policy, rule } => {
                write!(f, "tier {tier} policy {policy} rule {rule}")
            }
            DecidedBy::EndOfTier { tier } => write!(f, "end of tier {tier}"),
            DecidedBy::ProfileRule { profile, rule } => write!(f, "profile {profile} rule {rule}"),
            DecidedBy::NoProfileMatched => f.write_str("no profile matched"),
            DecidedBy::Failsafe { protocol, port } => {
                write!(f, "failsafe {protocol}/{port}")
            }
            DecidedBy::EncapFromWorkload => f.write_str("encapsulated packet from workload"),
            DecidedBy::ForwardDefault => f.write_str("forward default allow"),
            DecidedBy::Nothing => f.write_str("no verdict"),
            DecidedBy::HostToLocalWorkload => f.write_str("host to local workload (not policed)"),
            DecidedBy::EndpointToHost(a) => write!(f, "DefaultEndpointToHostAction {a:?}"),
            DecidedBy::WorkloadToHostIcmpv6 => f.write_str("ICMPv6 from workload to host"),
        }
    }
}

/// The outcome of one endpoint's chain for one direction, with a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionResult {
    pub endpoint: String,
    pub direction: Direction,
    pub chain: ChainType,
    /// `None` only for chains that can end without a verdict (not [`ChainType::Normal`]).
    pub verdict: Option<Verdict>,
    pub decided_by: DecidedBy,
    /// Human-readable steps (tiers entered, passes, logs), for test messages.
    pub trace: Vec<String>,
}

impl DirectionResult {
    pub fn allowed(&self) -> bool {
        self.verdict == Some(Verdict::Allow)
    }
}

impl fmt::Display for DirectionResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self
            .verdict
            .map_or("no verdict".to_string(), |v| v.to_string());
        write!(
            f,
            "{} {} ({:?}): {v} by {} [{}]",
            self.endpoint,
            self.direction,
            self.chain,
            self.decided_by,
            self.trace.join("; ")
        )
    }
}

/// The decision for a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Egress policy of the endpoint owning the source address, if any.
    pub egress_of_src_endpoint: Option<DirectionResult>,
    /// Ingress policy of the endpoint owning the destination address, if any.
    pub ingress_of_dst_endpoint: Option<DirectionResult>,
    /// Allow iff every side that exists allows.
    pub overall: Verdict,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.overall)?;
        match &self.egress_of_src_endpoint {
            Some(r) => write!(f, "; egress: {r}")?,
            None => write!(f, "; egress: source is not an endpoint")?,
        }
        match &self.ingress_of_dst_endpoint {
            Some(r) => write!(f, "; ingress: {r}"),
            None => write!(f, "; ingress: destination is not an endpoint"),
        }
    }
}

/// The outcome of running a list of rules (a policy's or a profile's direction).
enum RulesOutcome {
    Allow(usize),
    Deny(usize),
    Pass(usize),
    NoMatch,
}

/// Runs rules in order (`policy.go` `CombineMatchAndActionsForProtoRule`): Log logs and
/// continues; Allow / Deny / Pass end the list.
fn run_rules(
    set: &PolicySet,
    rules: &[ParsedRule],
    pkt: &Packet,
    trace: &mut Vec<String>,
    owner: &str,
) -> RulesOutcome {
    for (i, r) in rules.iter().enumerate() {
        if !rule_matches(r, &set.members, pkt) {
            continue;
        }
        match r.action {
            RuleAction::Log => trace.push(format!("{owner} rule {i}: log")),
            RuleAction::Allow => return RulesOutcome::Allow(i),
            RuleAction::Deny => return RulesOutcome::Deny(i),
            RuleAction::Pass => return RulesOutcome::Pass(i),
        }
    }
    RulesOutcome::NoMatch
}

struct Outcome {
    verdict: Option<Verdict>,
    decided_by: DecidedBy,
}

fn done(verdict: Verdict, decided_by: DecidedBy) -> Outcome {
    Outcome {
        verdict: Some(verdict),
        decided_by,
    }
}

/// Failsafe chains (`felix/rules/static.go`). Inbound (traffic arriving at a host endpoint)
/// accepts destination ports of `failsafe_inbound` (with a source net if configured);
/// outbound accepts destination ports of `failsafe_outbound` (destination net). The raw-table
/// versions used by untracked chains also accept the reverse direction's ports as *source*
/// ports, so that response traffic is not caught by doNotTrack policy.
fn failsafe(set: &PolicySet, dir: Direction, chain: ChainType, pkt: &Packet) -> Option<(u8, u16)> {
    let cfg = &set.config;
    let (fwd, rev) = match dir {
        Direction::Ingress => (&cfg.failsafe_inbound, &cfg.failsafe_outbound),
        Direction::Egress => (&cfg.failsafe_outbound, &cfg.failsafe_inbound),
    };
    let net_ok = |net: &Option<ipnet::IpNet>, ip| net.as_ref().is_none_or(|n| n.contains(&ip));
    // Inbound nets are source nets, outbound nets destination nets (both tables).
    let peer = |dir| match dir {
        Direction::Ingress => pkt.src,
        Direction::Egress => pkt.dst,
    };
    for e in fwd {
        // A failsafe entry with a net of the other IP family is not rendered.
        let family_ok = e
            .net
            .as_ref()
            .is_none_or(|n| n.addr().is_ipv4() == pkt.src.is_ipv4());
        if family_ok
            && pkt.protocol == e.protocol
            && pkt.dst_port == Some(e.port)
            && net_ok(&e.net, peer(dir))
        {
            return Some((e.protocol, e.port));
        }
    }
    if chain == ChainType::Untracked {
        for e in rev {
            let family_ok = e
                .net
                .as_ref()
                .is_none_or(|n| n.addr().is_ipv4() == pkt.src.is_ipv4());
            if family_ok
                && pkt.protocol == e.protocol
                && pkt.src_port == Some(e.port)
                && net_ok(&e.net, peer(dir))
            {
                return Some((e.protocol, e.port));
            }
        }
    }
    None
}

fn chain_outcome(
    set: &PolicySet,
    ep_index: usize,
    dir: Direction,
    chain: ChainType,
    pkt: &Packet,
    trace: &mut Vec<String>,
) -> Outcome {
    let ep = &set.endpoints[ep_index];
    let labels = &set.members[ep_index].labels;

    // Failsafes: host endpoints only, not on forward chains (`HostEndpointToFilterChains`
    // passes "" as the failsafe chain for forward chains; workloads never have one).
    if ep.kind == EndpointKind::Host
        && chain != ChainType::Forward
        && let Some((protocol, port)) = failsafe(set, dir, chain, pkt)
    {
        return done(Verdict::Allow, DecidedBy::Failsafe { protocol, port });
    }

    // Workload egress: drop encapsulated packets (`endpointIptablesChain`,
    // `allowVXLANEncap` / `allowIPIPEncap` are only false for the from-workload chain).
    if ep.kind == EndpointKind::Workload && dir == Direction::Egress {
        let cfg = &set.config;
        let vxlan = pkt.protocol == 17 && pkt.dst_port == Some(cfg.vxlan_port);
        let ipip = pkt.protocol == 4;
        if (vxlan && !cfg.allow_vxlan_packets_from_workloads)
            || (ipip && !cfg.allow_ipip_packets_from_workloads)
        {
            return done(Verdict::Deny, DecidedBy::EncapFromWorkload);
        }
    }

    // "Allow forwarded traffic by default" is rendered when the endpoint has no forward tier
    // at all, in either direction (`endpointIptablesChain`: `len(tiers) == 0`; forward tiers
    // are built from policies of both directions in `tierInfoToProtoTierInfo`).
    let has_forward_tiers = set.tiers.iter().flat_map(|t| &t.policies).any(|p| {
        !p.do_not_track
            && !p.pre_dnat
            && p.apply_on_forward
            && (p.ingress || p.egress)
            && p.selector.evaluate(labels)
    });
    for tier in &set.tiers {
        let applicable: Vec<_> = tier
            .policies
            .iter()
            .filter(|p| {
                let in_chain = match chain {
                    ChainType::Normal => !p.do_not_track && !p.pre_dnat,
                    ChainType::Forward => !p.do_not_track && !p.pre_dnat && p.apply_on_forward,
                    ChainType::Untracked => p.do_not_track,
                    // `addPolicyToTierInfo(&pol, preDNATTierInfo, false)`: no egress.
                    ChainType::PreDnat => {
                        p.pre_dnat && !p.do_not_track && dir == Direction::Ingress
                    }
                };
                let governs = match dir {
                    Direction::Ingress => p.ingress,
                    Direction::Egress => p.egress,
                };
                in_chain && governs && p.selector.evaluate(labels)
            })
            .collect();
        if applicable.is_empty() {
            continue;
        }
        trace.push(format!("tier {}", tier.name()));
        let mut passed = false;
        for p in applicable {
            let rules = match dir {
                Direction::Ingress => &p.inbound,
                Direction::Egress => &p.outbound,
            };
            let owner = p.id.to_string();
            let rule_by = |rule| DecidedBy::Rule {
                tier: tier.name().to_string(),
                policy: p.id.clone(),
                rule,
            };
            match run_rules(set, rules, pkt, trace, &owner) {
                RulesOutcome::Allow(i) => return done(Verdict::Allow, rule_by(i)),
                RulesOutcome::Deny(i) => return done(Verdict::Deny, rule_by(i)),
                RulesOutcome::Pass(i) => {
                    trace.push(format!("{owner} rule {i}: pass"));
                    passed = true;
                    break;
                }
                RulesOutcome::NoMatch => trace.push(format!("{owner}: no match")),
            }
        }
        // Untracked and pre-DNAT tiers get default action Pass (`tierInfoToProtoTierInfo`)
        // and no end-of-tier drop is rendered for them anyway.
        let end_drop =
            matches!(chain, ChainType::Normal | ChainType::Forward) && !tier.default_pass();
        if !passed && end_drop {
            return done(
                Verdict::Deny,
                DecidedBy::EndOfTier {
                    tier: tier.name().to_string(),
                },
            );
        }
    }

    match chain {
        ChainType::Normal => profiles_outcome(set, ep, dir, pkt, trace),
        ChainType::Forward if !has_forward_tiers => done(Verdict::Allow, DecidedBy::ForwardDefault),
        _ => Outcome {
            verdict: None,
            decided_by: DecidedBy::Nothing,
        },
    }
}

fn profiles_outcome(
    set: &PolicySet,
    ep: &Endpoint,
    dir: Direction,
    pkt: &Packet,
    trace: &mut Vec<String>,
) -> Outcome {
    for name in &ep.profiles {
        // Building the set guarantees every endpoint profile exists.
        let Some(p): Option<&ParsedProfile> = set.profiles.get(name) else {
            continue;
        };
        let rules = match dir {
            Direction::Ingress => &p.inbound,
            Direction::Egress => &p.outbound,
        };
        let owner = format!("profile {name}");
        let by = |rule| DecidedBy::ProfileRule {
            profile: name.clone(),
            rule,
        };
        match run_rules(set, rules, pkt, trace, &owner) {
            RulesOutcome::Allow(i) => return done(Verdict::Allow, by(i)),
            RulesOutcome::Deny(i) => return done(Verdict::Deny, by(i)),
            // A pass sets the pass mark and returns from the profile chain; only the accept
            // mark is checked after a profile, so evaluation goes on with the next profile.
            RulesOutcome::Pass(i) => trace.push(format!("{owner} rule {i}: pass")),
            RulesOutcome::NoMatch => trace.push(format!("{owner}: no match")),
        }
    }
    done(Verdict::Deny, DecidedBy::NoProfileMatched)
}

fn chain_result(
    set: &PolicySet,
    ep_index: usize,
    dir: Direction,
    chain: ChainType,
    pkt: &Packet,
) -> DirectionResult {
    let mut trace = Vec::new();
    let o = chain_outcome(set, ep_index, dir, chain, pkt, &mut trace);
    DirectionResult {
        endpoint: set.endpoints[ep_index].key.clone(),
        direction: dir,
        chain,
        verdict: o.verdict,
        decided_by: o.decided_by,
        trace,
    }
}

/// Evaluates one chain of one endpoint. Workload endpoints only have
/// [`ChainType::Normal`] chains.
pub fn evaluate_chain(
    set: &PolicySet,
    endpoint: &str,
    direction: Direction,
    chain: ChainType,
    packet: &Packet,
) -> Result<DirectionResult, EvalError> {
    let i = set
        .endpoints
        .iter()
        .position(|e| e.key == endpoint)
        .ok_or_else(|| EvalError::UnknownEndpoint(endpoint.to_string()))?;
    if set.endpoints[i].kind == EndpointKind::Workload && chain != ChainType::Normal {
        return Err(EvalError::Unsupported {
            owner: endpoint.to_string(),
            what: format!("{chain:?} chain on a workload endpoint"),
        });
    }
    Ok(chain_result(set, i, direction, chain, packet))
}

/// ICMPv6 types a workload may always send to its host (`static.go` `ICMPv6Filter`:
/// multicast listener query/report/done, router and neighbour solicitation, neighbour
/// advertisement).
const ICMPV6_TO_HOST: [u8; 6] = [130, 131, 132, 133, 135, 136];

fn fixed(
    endpoint: String,
    direction: Direction,
    verdict: Verdict,
    decided_by: DecidedBy,
) -> DirectionResult {
    DirectionResult {
        endpoint,
        direction,
        chain: ChainType::Normal,
        verdict: Some(verdict),
        decided_by,
        trace: Vec::new(),
    }
}

/// Judges a packet: egress of the endpoint owning the source address, ingress of the
/// endpoint owning the destination address (normal chains); allowed iff both (where present)
/// allow.
///
/// Two node-local paths follow Felix's static chains instead (`felix/rules/static.go`), when
/// endpoints have a node and [`crate::Resources::host_addresses`] knows its addresses:
/// - host → one of its own workloads is not policed at all (`filterOutputChain` returns for
///   workload interfaces before host endpoint policy, and the workload's ingress chain is not
///   on the path);
/// - workload → its own host runs the workload's egress policy, then
///   `DefaultEndpointToHostAction` (`filterWorkloadToHostChain`), reported as the ingress side
///   with endpoint `node/<name>`; host endpoint ingress policy is skipped (the chain is entered
///   with a goto). ICMPv6 neighbour-discovery types bypass egress policy.
pub fn evaluate(set: &PolicySet, packet: &Packet) -> Decision {
    let src_ep = set.endpoint_at(packet.src);
    let dst_ep = set.endpoint_at(packet.dst);
    let workload_node = |i: Option<usize>| {
        let e = &set.endpoints[i?];
        if e.kind == EndpointKind::Workload {
            e.node.as_deref()
        } else {
            None
        }
    };
    let src_host = set.node_of_host_address(packet.src);
    let dst_host = set.node_of_host_address(packet.dst);

    let (egress, ingress) = match (src_ep, dst_ep) {
        (_, Some(d)) if src_host.is_some() && src_host == workload_node(dst_ep) => (
            None,
            Some(fixed(
                set.endpoints[d].key.clone(),
                Direction::Ingress,
                Verdict::Allow,
                DecidedBy::HostToLocalWorkload,
            )),
        ),
        (Some(s), _) if dst_host.is_some() && dst_host == workload_node(src_ep) => {
            let node = dst_host.unwrap_or_default();
            let host_side = format!("node/{node}");
            let icmpv6_nd = packet.protocol == 58
                && packet.ip_version() == 6
                && packet
                    .icmp_type
                    .is_some_and(|t| ICMPV6_TO_HOST.contains(&t));
            if icmpv6_nd {
                let by = DecidedBy::WorkloadToHostIcmpv6;
                (
                    Some(fixed(
                        set.endpoints[s].key.clone(),
                        Direction::Egress,
                        Verdict::Allow,
                        by.clone(),
                    )),
                    Some(fixed(host_side, Direction::Ingress, Verdict::Allow, by)),
                )
            } else {
                let action = set.config.default_endpoint_to_host_action;
                let v = match action {
                    EndpointToHostAction::Drop => Verdict::Deny,
                    EndpointToHostAction::Return | EndpointToHostAction::Accept => Verdict::Allow,
                };
                (
                    Some(chain_result(
                        set,
                        s,
                        Direction::Egress,
                        ChainType::Normal,
                        packet,
                    )),
                    Some(fixed(
                        host_side,
                        Direction::Ingress,
                        v,
                        DecidedBy::EndpointToHost(action),
                    )),
                )
            }
        }
        _ => (
            src_ep.map(|i| chain_result(set, i, Direction::Egress, ChainType::Normal, packet)),
            dst_ep.map(|i| chain_result(set, i, Direction::Ingress, ChainType::Normal, packet)),
        ),
    };
    let denied = [&egress, &ingress]
        .into_iter()
        .flatten()
        .any(|r| r.verdict == Some(Verdict::Deny));
    Decision {
        egress_of_src_endpoint: egress,
        ingress_of_dst_endpoint: ingress,
        overall: if denied {
            Verdict::Deny
        } else {
            Verdict::Allow
        },
    }
}

/// One cell of a reachability matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// Source endpoint key.
    pub from: String,
    /// Destination endpoint key.
    pub to: String,
    pub verdict: Verdict,
}

/// The verdict for every ordered pair of distinct endpoints, in endpoint order, using the
/// first address of the source and the first address of the destination of the same family
/// (pairs without a common family are left out); `packet(src, dst)` builds the packet.
pub fn reachability(
    set: &PolicySet,
    mut packet: impl FnMut(std::net::IpAddr, std::net::IpAddr) -> Packet,
) -> Vec<Reach> {
    let mut out = Vec::new();
    for a in &set.endpoints {
        for b in &set.endpoints {
            if a.key == b.key {
                continue;
            }
            let pair = a.addresses.iter().find_map(|na| {
                b.addresses
                    .iter()
                    .find(|nb| nb.addr().is_ipv4() == na.addr().is_ipv4())
                    .map(|nb| (na.addr(), nb.addr()))
            });
            if let Some((src, dst)) = pair {
                out.push(Reach {
                    from: a.key.clone(),
                    to: b.key.clone(),
                    verdict: evaluate(set, &packet(src, dst)).overall,
                });
            }
        }
    }
    out
}
