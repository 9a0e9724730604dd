//! Kubernetes NetworkPolicy → Calico `NetworkPolicy` (Calico `K8sNetworkPolicyToCalico`,
//! `k8sRuleToCalico`, `k8sPeerToCalicoFields`, `k8sPortToCalico`, `SimplifyPorts`).
//!
//! The result is what Calico's Kubernetes datastore hands to Felix for a
//! `networking.k8s.io/v1` NetworkPolicy (key kind [`KIND_KUBERNETES_NETWORK_POLICY`], same name
//! and namespace): tier `default`, order 1000, selectors rewritten to Calico syntax, every rule
//! `Allow`. Rules that cannot be converted are dropped and reported alongside the policy (as
//! Calico's `ErrorPolicyConversion` does) instead of failing the whole policy, so the rest of it
//! is still enforced.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;

use calico_api::meta::ObjectMeta;
use calico_api::netutil::parse_cidr;
use calico_api::numorstring::{Port, PortError, Protocol};
use calico_api::policy::{DEFAULT_TIER, NetworkPolicy as CalicoPolicy, NetworkPolicySpec};
use calico_api::rule::{Action, EntityRule, PolicyType, Rule};

use crate::decode::K8sResource;
use crate::profile::{
    ConversionError, ProfileConversion, convert_uid, namespace_to_profile,
    service_account_to_profile,
};
use crate::selector::{SelectorType, k8s_selector_to_calico};
use crate::types::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};

/// Kind of the datastore key a converted policy is stored under (`model.KindKubernetesNetworkPolicy`).
pub const KIND_KUBERNETES_NETWORK_POLICY: &str = "KubernetesNetworkPolicy";
/// Prefix of the name a converted policy had before Calico v3.32 (`knp.default.<name>`); older
/// Typha versions and the v3 name validator still know it.
pub const LEGACY_POLICY_NAME_PREFIX: &str = "knp.default.";
/// Every converted Kubernetes policy gets this order (after Calico policies with lower order,
/// before those with none).
pub const K8S_POLICY_ORDER: f64 = 1000.0;

/// The legacy (pre-v3.32) name of a converted Kubernetes policy: `knp.default.<name>`.
pub fn legacy_policy_name(name: &str) -> String {
    format!("{LEGACY_POLICY_NAME_PREFIX}{name}")
}

/// Which rule list a dropped rule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleDirection {
    Ingress,
    Egress,
}

impl fmt::Display for RuleDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleDirection::Ingress => "ingress",
            RuleDirection::Egress => "egress",
        })
    }
}

/// A `port[:endPort]` that is not a Calico port (Calico `k8sPortToCalico`'s error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port {text}: {source}")]
pub struct InvalidPort {
    /// The text Calico parsed: `port` or `port:endPort`.
    pub text: String,
    #[source]
    pub source: PortError,
}

/// Why one Kubernetes rule could not be converted (the whole rule is then dropped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleConversionError {
    #[error("failed to parse k8s port: {0}")]
    Port(#[from] InvalidPort),
}

/// A Kubernetes rule that could not be converted and was left out of the Calico policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedRule {
    pub direction: RuleDirection,
    /// Index in `spec.ingress` / `spec.egress` of the Kubernetes policy.
    pub index: usize,
    /// Calico's wording: `k8s rule couldn't be converted: failed to parse k8s port: ...`.
    pub reason: String,
}

impl fmt::Display for DroppedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spec.{}[{}] ({})",
            self.direction, self.index, self.reason
        )
    }
}

/// Calico `ErrorPolicyConversion`: the policy converted, but some rules were dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyConversionError {
    pub policy_name: String,
    pub rules: Vec<DroppedRule>,
}

impl fmt::Display for PolicyConversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy: {}", self.policy_name)?;
        match self.rules.as_slice() {
            [] => f.write_str(": unknown policy conversion error"),
            [one] => write!(f, ": error with rule {one}"),
            many => {
                f.write_str(": error with the following rules:\n")?;
                for r in many {
                    writeln!(f, "-  {r}")?;
                }
                Ok(())
            }
        }
    }
}

/// The converted policy and the rules that had to be dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConversion {
    pub policy: CalicoPolicy,
    pub dropped: Vec<DroppedRule>,
}

impl PolicyConversion {
    /// `Some` when rules were dropped (Calico returns the policy *and* this error).
    pub fn error(&self) -> Option<PolicyConversionError> {
        (!self.dropped.is_empty()).then(|| PolicyConversionError {
            policy_name: self.policy.metadata.name.clone(),
            rules: self.dropped.clone(),
        })
    }
}

/// What a Kubernetes object becomes in Calico.
#[derive(Debug, Clone, PartialEq)]
pub enum CalicoObject {
    /// From a NetworkPolicy (stored under kind [`KIND_KUBERNETES_NETWORK_POLICY`]).
    NetworkPolicy(PolicyConversion),
    /// From a Namespace (`kns.*`) or a ServiceAccount (`ksa.*`).
    Profile(ProfileConversion),
}

/// Converts any object of the kinds here (see [`k8s_network_policy_to_calico`],
/// [`namespace_to_profile`], [`service_account_to_profile`]).
pub fn convert_resource(r: &K8sResource) -> Result<CalicoObject, ConversionError> {
    Ok(match r {
        K8sResource::NetworkPolicy(np) => {
            CalicoObject::NetworkPolicy(k8s_network_policy_to_calico(np)?)
        }
        K8sResource::Namespace(ns) => CalicoObject::Profile(namespace_to_profile(ns)?),
        K8sResource::ServiceAccount(sa) => CalicoObject::Profile(service_account_to_profile(sa)?),
    })
}

/// Converts a Kubernetes NetworkPolicy the way Calico's Kubernetes datastore does.
///
/// - name, namespace, creationTimestamp and resourceVersion are copied; the UID (if any) is
///   transformed with [`convert_uid`] so the two objects never share one;
/// - `spec.selector` is the pod selector in Calico syntax (see [`k8s_selector_to_calico`]);
/// - each Kubernetes rule becomes one `Allow` rule per protocol × peer (see
///   [`k8s_rule_to_calico`]); a rule whose ports do not parse is dropped and reported;
/// - `types` are the `policyTypes` given, Ingress first; with none (Kubernetes ≤ 1.7 wrote
///   none) the policy is `[Ingress]` only — egress rules are then kept but not enforced.
///
/// Errors only when the UID is present and is not a UUID.
pub fn k8s_network_policy_to_calico(
    np: &NetworkPolicy,
) -> Result<PolicyConversion, ConversionError> {
    let mut dropped = Vec::new();
    let mut ingress = Vec::new();
    for (i, r) in np.spec.ingress.iter().enumerate() {
        match k8s_rule_to_calico(&r.from, &r.ports, RuleDirection::Ingress) {
            Ok(rules) => ingress.extend(rules),
            Err(reason) => dropped.push(DroppedRule {
                direction: RuleDirection::Ingress,
                index: i,
                reason: format!("k8s rule couldn't be converted: {reason}"),
            }),
        }
    }
    let mut egress = Vec::new();
    for (i, r) in np.spec.egress.iter().enumerate() {
        match k8s_rule_to_calico(&r.to, &r.ports, RuleDirection::Egress) {
            Ok(rules) => egress.extend(rules),
            Err(reason) => dropped.push(DroppedRule {
                direction: RuleDirection::Egress,
                index: i,
                reason: format!("k8s rule couldn't be converted: {reason}"),
            }),
        }
    }

    // Only the exact type names count (a typed Go switch); anything else is ignored here and
    // rejected by Kubernetes validation.
    let has = |t: &str| np.spec.policy_types.iter().any(|p| p == t);
    let mut types = Vec::new();
    if has("Ingress") {
        types.push(PolicyType::Ingress);
    }
    if has("Egress") {
        types.push(PolicyType::Egress);
    }
    if types.is_empty() {
        types.push(PolicyType::Ingress);
    }

    let uid = if np.metadata.uid.is_empty() {
        String::new()
    } else {
        convert_uid(&np.metadata.uid)?
    };

    let policy = CalicoPolicy {
        metadata: ObjectMeta {
            name: np.metadata.name.clone(),
            namespace: np.metadata.namespace.clone(),
            creation_timestamp: np.metadata.creation_timestamp.clone(),
            uid,
            resource_version: np.metadata.resource_version.clone(),
            ..ObjectMeta::default()
        },
        spec: NetworkPolicySpec {
            order: Some(K8S_POLICY_ORDER),
            tier: DEFAULT_TIER.to_string(),
            selector: k8s_selector_to_calico(Some(&np.spec.pod_selector), SelectorType::Pod),
            ingress,
            egress,
            types,
            ..NetworkPolicySpec::default()
        },
    };
    Ok(PolicyConversion { policy, dropped })
}

/// One Kubernetes rule → Calico rules (Calico `k8sRuleToCalico`).
///
/// Ports are grouped by protocol (protocol names in byte order, as Calico sorts them); a port
/// without `protocol` is TCP; a port entry without `port` (e.g. `{}`) means every port of its
/// protocol and absorbs the other ports of that protocol; no `ports` at all means any
/// protocol, any port. Each protocol's ports are merged into ranges ([`simplify_ports`]).
/// Then one rule per protocol × peer (no peers: one rule without peer match). Ingress puts the
/// peer in `source` and ports in `destination`; egress puts both in `destination`.
///
/// Fails (the caller drops the whole Kubernetes rule) when a `port[:endPort]` does not parse as
/// a Calico port.
pub fn k8s_rule_to_calico(
    peers: &[NetworkPolicyPeer],
    ports: &[NetworkPolicyPort],
    direction: RuleDirection,
) -> Result<Vec<Rule>, RuleConversionError> {
    // Protocol name → ports; `None` means all ports of that protocol. The empty name (only
    // when no ports are listed) means no protocol match at all.
    let mut by_protocol: BTreeMap<String, Option<Vec<Port>>> = BTreeMap::new();
    if ports.is_empty() {
        by_protocol.insert(String::new(), None);
    }
    for p in ports {
        // An explicit empty protocol (rejected by Kubernetes validation) lands on the empty
        // name too and yields ports without a protocol, exactly as in Calico.
        let protocol = Protocol::from_name(p.protocol.as_deref().unwrap_or("TCP")).to_string();
        let port = k8s_port_to_calico(p)?;
        match (by_protocol.entry(protocol), port) {
            (Entry::Vacant(v), port) => {
                v.insert(port.map(|p| vec![p]));
            }
            (Entry::Occupied(mut o), None) => {
                o.insert(None);
            }
            (Entry::Occupied(mut o), Some(port)) => {
                // An existing "all ports" entry stays all ports.
                if let Some(list) = o.get_mut() {
                    list.push(port);
                }
            }
        }
    }

    // Each peer's match fields are the same for every protocol: compute them once.
    let peers: Vec<PeerFields> = if peers.is_empty() {
        vec![PeerFields::default()]
    } else {
        peers
            .iter()
            .map(|p| k8s_peer_to_calico_fields(Some(p)))
            .collect()
    };

    let mut rules = Vec::new();
    for (protocol, ports) in by_protocol {
        let ports = ports.map(|p| simplify_ports(&p)).unwrap_or_default();
        let protocol = (!protocol.is_empty()).then(|| Protocol::from_name(&protocol));
        for f in &peers {
            let peer_rule = EntityRule {
                selector: f.selector.clone(),
                namespace_selector: f.namespace_selector.clone(),
                nets: f.nets.clone(),
                not_nets: f.not_nets.clone(),
                ..EntityRule::default()
            };
            let (source, destination) = match direction {
                RuleDirection::Ingress => (
                    peer_rule,
                    EntityRule {
                        ports: ports.clone(),
                        ..EntityRule::default()
                    },
                ),
                RuleDirection::Egress => (
                    EntityRule::default(),
                    EntityRule {
                        ports: ports.clone(),
                        ..peer_rule
                    },
                ),
            };
            rules.push(Rule {
                action: Some(Action::Allow),
                protocol: protocol.clone(),
                source,
                destination,
                ..Rule::default()
            });
        }
    }
    Ok(rules)
}

/// Calico `k8sPortToCalico`: `port` or `port:endPort` parsed as a Calico port (`None`: no
/// `port`, i.e. all ports; `endPort` alone is ignored).
pub fn k8s_port_to_calico(p: &NetworkPolicyPort) -> Result<Option<Port>, InvalidPort> {
    let Some(port) = &p.port else {
        return Ok(None);
    };
    let mut text = port.to_string();
    if let Some(end) = p.end_port {
        text = format!("{text}:{end}");
    }
    match Port::parse(&text) {
        Ok(port) => Ok(Some(port)),
        Err(source) => Err(InvalidPort { text, source }),
    }
}

/// The match fields one peer contributes to a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerFields {
    pub selector: String,
    pub namespace_selector: String,
    pub nets: Vec<String>,
    pub not_nets: Vec<String>,
}

/// Calico `k8sPeerToCalicoFields`.
///
/// - no peer: nothing;
/// - `ipBlock`: `nets: [cidr]` and `notNets: except`, each the masked network
///   (`10.0.0.1/8` → `10.0.0.0/8`); selectors are ignored. As in Calico, a CIDR that does not
///   parse leaves `nets` empty (and an `except` entry that does not parse ends `notNets` there):
///   Kubernetes validation ([`crate::validate`]) rejects such input before it gets here;
/// - otherwise `selector` from `podSelector` (pods of any kind restricted to Kubernetes pods,
///   even when absent) and `namespaceSelector` from `namespaceSelector` (absent: "", the
///   policy's namespace; empty: `all()`).
pub fn k8s_peer_to_calico_fields(peer: Option<&NetworkPolicyPeer>) -> PeerFields {
    let mut out = PeerFields::default();
    let Some(peer) = peer else {
        return out;
    };
    if let Some(block) = &peer.ip_block {
        let Some(cidr) = parse_cidr(&block.cidr) else {
            return out;
        };
        out.nets = vec![cidr.canonical()];
        for except in &block.except {
            let Some(cidr) = parse_cidr(except) else {
                return out;
            };
            out.not_nets.push(cidr.canonical());
        }
        return out;
    }
    out.selector = k8s_selector_to_calico(peer.pod_selector.as_ref(), SelectorType::Pod);
    out.namespace_selector =
        k8s_selector_to_calico(peer.namespace_selector.as_ref(), SelectorType::Namespace);
    out
}

/// Calico `SimplifyPorts`: the fewest ranges covering the given ports.
///
/// Named ports pass through first, in input order; numeric ports and ranges are merged where
/// they overlap or touch and listed in ascending order. When there is at most one numeric port
/// number in total the input is returned unchanged (so `[80, "http"]` keeps its order, and a
/// single range stays as written).
pub fn simplify_ports(ports: &[Port]) -> Vec<Port> {
    if ports.len() <= 1 {
        return ports.to_vec();
    }
    let mut named = Vec::new();
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for p in ports {
        if p.is_named() {
            named.push(p.clone());
        } else if p.min_port <= p.max_port {
            // A reversed range covers no port (Calico expands it to nothing).
            ranges.push((u32::from(p.min_port), u32::from(p.max_port)));
        }
    }
    let count: u32 = ranges.iter().map(|(a, b)| b - a + 1).sum();
    if count <= 1 {
        return ports.to_vec();
    }
    ranges.sort_unstable();
    let mut out = named;
    let mut current = ranges[0];
    for &(a, b) in &ranges[1..] {
        if a > current.1 + 1 {
            out.push(port_range(current));
            current = (a, b);
        } else {
            current.1 = current.1.max(b);
        }
    }
    out.push(port_range(current));
    out
}

fn port_range((a, b): (u32, u32)) -> Port {
    // Both ends came from u16 values and a <= b, so the conversion and the range are valid.
    let a = u16::try_from(a).unwrap_or(u16::MAX);
    let b = u16::try_from(b).unwrap_or(u16::MAX);
    Port {
        min_port: a,
        max_port: b,
        port_name: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(s: &str) -> Vec<Port> {
        s.split(',')
            .filter(|p| !p.is_empty())
            .map(|p| Port::parse(p).unwrap())
            .collect()
    }

    fn show(p: &[Port]) -> String {
        p.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn simplify_table() {
        // Calico conversion_test.go "Test port simplification".
        let table = [
            ("", ""),
            ("0", "0"),
            ("1", "1"),
            ("65535", "65535"),
            ("0:65535", "0:65535"),
            ("1,2", "1:2"),
            ("2,1", "1:2"),
            ("1,2,4", "1:2,4"),
            ("1,2,3,4,80:81,81:90,9090", "1:4,80:90,9090"),
            ("81:90,4,2,80:81,3,1,9090", "1:4,80:90,9090"),
            (
                "81:90,4,2,foo,80:81,3,1,9090,http",
                "foo,http,1:4,80:90,9090",
            ),
            ("foo", "foo"),
            // Ours: order kept when nothing numeric to merge; duplicates and full range.
            ("80,foo", "80,foo"),
            ("foo,bar", "foo,bar"),
            ("80,80", "80"),
            ("0:65535,80,65535", "0:65535"),
            ("foo,80:81", "foo,80:81"),
        ];
        for (input, want) in table {
            assert_eq!(
                show(&simplify_ports(&ports(input))),
                want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn reversed_range_covers_nothing() {
        let rev = Port {
            min_port: 90,
            max_port: 80,
            port_name: String::new(),
        };
        let out = simplify_ports(&[rev.clone(), Port::single(5), Port::single(6)]);
        assert_eq!(show(&out), "5:6");
        // One numeric port in total: unchanged.
        let out = simplify_ports(&[rev.clone(), Port::single(5)]);
        assert_eq!(out, vec![rev, Port::single(5)]);
    }

    #[test]
    fn conversion_error_text() {
        let mk = |i| DroppedRule {
            direction: RuleDirection::Egress,
            index: i,
            reason: "r".into(),
        };
        let one = PolicyConversionError {
            policy_name: "p".into(),
            rules: vec![mk(1)],
        };
        assert_eq!(
            one.to_string(),
            "policy: p: error with rule spec.egress[1] (r)"
        );
        let two = PolicyConversionError {
            policy_name: "p".into(),
            rules: vec![mk(0), mk(2)],
        };
        assert_eq!(
            two.to_string(),
            "policy: p: error with the following rules:\n-  spec.egress[0] (r)\n-  spec.egress[2] (r)\n"
        );
        assert_eq!(legacy_policy_name("x"), "knp.default.x");
    }
}
