//! calico-nft: compiles a [`calico_dataplane_model::DataplaneModel`] (what Felix's calculation
//! graph says the dataplane must enforce) into one nftables table, `inet calico`, and computes
//! minimal nft scripts that turn one compiled ruleset into another ([`diff`]). It also reads
//! back the shape of a live table from `nft -j list table` output
//! ([`TableShape::from_nft_json`]) so a driver can detect drift.
//!
//! The table layout (base chains, verdict-map dispatch, endpoint / policy / profile chains,
//! per-family hash sets) is described in [`compile`]'s module and follows Felix's
//! `felix/rules` renderer; rule matching follows `felix/rules/policy.go`. [`PolicyTables`]
//! spreads the same layout over a main table and shard tables by namespace
//! (`NftConfig::shards`), because the kernel re-validates a whole table at every commit that
//! adds a rule: a change then pays for its own table only.
//!
//! ```
//! use calico_dataplane_model::*;
//! use calico_nft::{NftConfig, compile, diff, recompile};
//!
//! let cfg = NftConfig::default();
//! let mut model = DataplaneModel::default();
//! let id = WorkloadEndpointId {
//!     orchestrator_id: "k8s".into(),
//!     workload_id: "ns/pod".into(),
//!     endpoint_id: "eth0".into(),
//! };
//! let update = ModelUpdate::WorkloadEndpointUpdate {
//!     id,
//!     endpoint: WorkloadEndpoint { interface_name: "cali1".into(), ..Default::default() },
//! };
//! let empty = compile(&model, &cfg).unwrap();
//! model.apply(&update).unwrap();
//! let next = recompile(&empty, &model, &[update], &cfg).unwrap();
//! assert!(next == compile(&model, &cfg).unwrap());
//! let script = diff(&empty, &next); // one nft transaction
//! assert!(script.contains("add chain inet calico tw-cali1"));
//! assert!(script.contains("add element inet calico to-wl { \"cali1\" : goto tw-cali1 }"));
//! assert_eq!(diff(&next, &next), "");
//! ```
//!
//! [`diff_ops`] computes the same change split into typed set/map element changes
//! ([`ElementOp`]: what a driver can send as nf_tables set-element messages without `nft`) and
//! the remaining script; [`NftChange::render`] puts both back into one transaction.
//! [`diff_plan`] goes further: the whole change as typed table operations
//! ([`bytecode::TableOp`]), with every rule compiled by [`rule_code`] into the nf_tables
//! expressions nft itself would generate ([`bytecode::Expr`]), so a driver can send chain and
//! rule changes as netlink messages too.
//!
//! It is pure: no I/O, no processes, no netlink. It must not depend on the calculation graph,
//! the datastore or Calico's v3 API types; its only input is the dataplane model. Running `nft`
//! is the job of the driver in calico-felix.

use std::collections::{BTreeMap, BTreeSet};

pub mod bytecode;
mod compile;
mod diff;
mod elements;
mod error;
mod incremental;
pub mod marks;
mod names;
mod plan;
mod rule_code;
mod rules;
mod ruleset;
mod shape;
pub mod synthetic;
mod tables;

pub use compile::{FAILSAFE_IN, FAILSAFE_OUT, compile};
pub use diff::diff;
pub use elements::{Element, ElementOp, NftChange, Verdict, diff_ops, render_elements};
pub use error::NftError;
pub use incremental::recompile;
pub use names::{MAX_NAME_LEN, length_limited};
pub use plan::{PlanError, diff_plan};
pub use rule_code::{RuleCodeError, anon_set_debug, rule_code};
pub use ruleset::{Ruleset, RulesetCounts};
pub use shape::TableShape;
pub use tables::{MAX_SHARDS, PolicyTables, TablePlan, global_table, shard_of, shard_table};

/// What happens to traffic from a workload to its own host once the workload's egress policy
/// allowed it (Felix `DefaultEndpointToHostAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointToHostAction {
    /// Felix's default.
    #[default]
    Drop,
    Accept,
    /// Leave Calico's chains; the host's other rules decide.
    Return,
}

/// Compiler settings, Felix configuration equivalents in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftConfig {
    /// Table name, family inet (`calico`).
    pub table: String,
    /// Workload interface prefixes (`InterfacePrefix`, `cali`).
    pub iface_prefixes: Vec<String>,
    /// (protocol number, port) always accepted towards host endpoints
    /// (`FailsafeInboundHostPorts`).
    pub failsafe_inbound: Vec<(u8, u16)>,
    /// (protocol number, port) always accepted from host endpoints
    /// (`FailsafeOutboundHostPorts`).
    pub failsafe_outbound: Vec<(u8, u16)>,
    /// Inbound failsafe entries with a `net`: accepted only from that source net
    /// (`FailsafeInboundHostPorts` entries with `net`, Felix's `failsafeInChain`).
    pub failsafe_inbound_nets: Vec<(u8, u16, ipnet::IpNet)>,
    /// Outbound failsafe entries with a `net`: accepted only towards that destination net.
    pub failsafe_outbound_nets: Vec<(u8, u16, ipnet::IpNet)>,
    /// The host's interfaces and their addresses, when known: host endpoints without an
    /// interface name govern the interfaces holding one of their expected IPs (Felix's
    /// `resolveHostEndpoints`). `None`: such host endpoints are not programmed.
    pub host_interfaces: Option<BTreeMap<String, BTreeSet<std::net::IpAddr>>>,
    /// `DefaultEndpointToHostAction`.
    pub endpoint_to_host_action: EndpointToHostAction,
    /// `LogPrefix` of Log rules.
    pub log_prefix: String,
    /// `IPv6Support` (true). Without it no IPv6 is programmed, as in Felix: rules that match
    /// addresses (nets, selectors, named ports, ICMP) are rendered for IPv4 only and IP sets
    /// get no IPv6 nft set. IPv6 packets then meet only the rules that match no address, so
    /// no address match lets one through. Halves the rules of selector-heavy policies on
    /// IPv4-only clusters (Calico's manifests set `FELIX_IPV6SUPPORT=false` there).
    pub ipv6: bool,
    /// How many shard tables workload policy is spread over ([`PolicyTables`]); 0: one
    /// table. Not a Felix setting: it exists because the kernel validates a whole table at
    /// every commit that adds a rule.
    pub shards: u16,
}

impl Default for NftConfig {
    /// Felix's defaults (`felix/config/config_params.go`): failsafe inbound tcp 22, udp 68,
    /// tcp 179, 2379, 2380, 5473, 6443, 6666, 6667; outbound udp 53, udp 67, tcp 179, 2379,
    /// 2380, 5473, 6443, 6666, 6667.
    fn default() -> Self {
        const TCP: u8 = 6;
        const UDP: u8 = 17;
        let common = [179, 2379, 2380, 5473, 6443, 6666, 6667].map(|p| (TCP, p));
        let mut inbound = vec![(TCP, 22), (UDP, 68)];
        inbound.extend(common);
        let mut outbound = vec![(UDP, 53), (UDP, 67)];
        outbound.extend(common);
        NftConfig {
            table: "calico".into(),
            iface_prefixes: vec!["cali".into()],
            failsafe_inbound: inbound,
            failsafe_outbound: outbound,
            failsafe_inbound_nets: Vec::new(),
            failsafe_outbound_nets: Vec::new(),
            host_interfaces: None,
            endpoint_to_host_action: EndpointToHostAction::Drop,
            log_prefix: "calico-packet".into(),
            ipv6: true,
            shards: 0,
        }
    }
}

impl NftConfig {
    /// Checks that every setting can be written into an nft script.
    pub fn validate(&self) -> Result<(), NftError> {
        let bad = |field: &str, why: &str| NftError::BadConfig(format!("{field}: {why}"));
        let t = &self.table;
        if t.is_empty()
            || t.len() > MAX_NAME_LEN
            || !t.starts_with(|c: char| c.is_ascii_alphabetic())
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad(
                "table",
                &format!("{t:?} is not a valid nft table name"),
            ));
        }
        if self.shards > MAX_SHARDS {
            return Err(bad(
                "shards",
                &format!("{} is more than {MAX_SHARDS}", self.shards),
            ));
        }
        if self.shards > 0 && t.len() + "-global".len() > MAX_NAME_LEN {
            return Err(bad(
                "table",
                &format!(
                    "{t:?} leaves no room for the suffixes of a sharded layout (-NN, -global)"
                ),
            ));
        }
        if self.iface_prefixes.is_empty() {
            return Err(bad("iface_prefixes", "at least one prefix is needed"));
        }
        for p in &self.iface_prefixes {
            if p.is_empty()
                || p.len() > 14
                || !p
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '*' | '\\' | '/' | ':'))
            {
                return Err(bad(
                    "iface_prefixes",
                    &format!("{p:?} is not an interface name prefix"),
                ));
            }
        }
        // nft's log prefix is at most 127 bytes; we append ": ".
        let l = &self.log_prefix;
        if l.len() > 125 || l.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
            return Err(bad(
                "log_prefix",
                &format!("{l:?} must be at most 125 printable characters without quotes"),
            ));
        }
        Ok(())
    }
}
