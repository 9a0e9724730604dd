//! calico-policy-eval: a slow but deliberately obvious reference implementation ("oracle") of
//! Calico's policy decision for one packet. Given Calico v3 resources (tiers, policies,
//! profiles, network sets) and endpoints, [`evaluate`] says whether the egress policy of the
//! source endpoint and the ingress policy of the destination endpoint allow a packet, and which
//! tier / policy / rule decided. Later code (the calculation graph, the nftables compiler, the
//! dataplane driver) is differential-tested against it.
//!
//! It owns only the *evaluation*: Felix's per-endpoint chain structure
//! (`felix/rules/endpoints.go`) and rule matching (`felix/rules/policy.go`,
//! `felix/calc/rule_scanner.go`), label inheritance and IP-set membership, evaluated directly
//! over data structures instead of being compiled to a dataplane. The v3 → v1 rewriting of
//! resources (defaulting, validation, libcalico-go's selector rewriting, Felix's tier / policy
//! ordering) comes from `calico-policy-rules`, the same code the calculation graph uses. Every
//! semantic decision cites the Calico file it follows.
//!
//! It is pure: no I/O, no datastore, no dataplane, no async. It depends only on `calico-api`
//! (resource types), `calico-selector` (Calico's selector language) and `calico-policy-rules`;
//! it must never depend on the code it is used to check (calico-calc, calico-felix, an nft
//! compiler, ...).
//!
//! What it does not model (see [`eval`] for details): connection tracking (only the first
//! packet of a flow is judged), Kubernetes Services matches (rejected when building), L7 HTTP
//! matches (ignored, as Felix's L3/L4 rendering ignores them), interface-level host endpoint
//! paths (a host endpoint is identified by its `expectedIPs`; `interfaceName: "*"` host
//! endpoints are not special), IPVS / kube-proxy paths, the composition of the raw / mangle /
//! filter stages for `doNotTrack` / `preDNAT` policies ([`evaluate_chain`] evaluates each stage
//! on its own), and the BPF dataplane's differences. Node-local paths (host → own workloads,
//! workload → own host) are modelled when endpoints carry their node.
//!
//! ```
//! use calico_policy_eval::{Endpoint, Packet, PolicySet, Resources, Verdict, evaluate};
//! let mut res = Resources::default();
//! res.endpoints.push(Endpoint::pod("ns1/a", "ns1", [("app", "a")], ["10.0.0.1"]).unwrap());
//! res.endpoints.push(Endpoint::pod("ns1/b", "ns1", [("app", "b")], ["10.0.0.2"]).unwrap());
//! let set = PolicySet::from_resources(res).unwrap();
//! // No policy selects either pod: the namespace profile `kns.ns1` allows everything.
//! let d = evaluate(&set, &Packet::tcp("10.0.0.1", "10.0.0.2", 80).unwrap());
//! assert_eq!(d.overall, Verdict::Allow);
//! ```

mod build;
mod error;
pub mod eval;
mod matching;
mod model;

pub use build::{PolicySet, Resources};
pub use calico_policy_rules::proto_number;
pub use calico_policy_rules::{PolicyId, PolicyKind};
pub use error::EvalError;
pub use eval::{
    ChainType, DecidedBy, Decision, DirectionResult, Reach, Verdict, evaluate, evaluate_chain,
    reachability,
};
pub use model::{
    DEFAULT_SRC_PORT, Direction, Endpoint, EndpointKind, EndpointToHostAction, EvalConfig,
    NamedPort, Packet, ProtoPort,
};
