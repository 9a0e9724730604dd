//! Which pools a request may draw from (`ipam.go` `determinePools`, `filterPoolsByUse`,
//! `pools.go` `SelectsNode`/`SelectsNamespace`), as pure functions over pool values.

use std::collections::BTreeMap;
use std::net::IpAddr;

use calico_api::ippool::IPPool;
use ipnet::IpNet;

use crate::error::IpamError;

/// A pool ready for IPAM: its parsed CIDR and block size, with Calico's read-time defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub name: String,
    pub cidr: IpNet,
    pub block_size: u8,
    pub disabled: bool,
    pub node_selector: String,
    pub namespace_selector: String,
    pub allowed_uses: Vec<String>,
    /// `Automatic` or `Manual`.
    pub assignment_mode: String,
}

/// What an address is for (`IPPoolAllowedUse`), matched against a pool's `allowedUses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntendedUse {
    Workload,
    Tunnel,
    LoadBalancer,
}

impl IntendedUse {
    pub fn as_str(self) -> &'static str {
        match self {
            IntendedUse::Workload => "Workload",
            IntendedUse::Tunnel => "Tunnel",
            IntendedUse::LoadBalancer => "LoadBalancer",
        }
    }
}

impl Pool {
    /// Converts a stored pool, applying Calico's defaults for unset fields; `None` for a pool
    /// whose CIDR or block size is unusable (Calico skips those with an error log).
    pub fn from_resource(p: &IPPool) -> Option<Pool> {
        let cidr = p.spec.parsed_cidr()?.network();
        let block_size = u8::try_from(p.spec.effective_block_size()?).ok()?;
        if block_size < cidr.prefix_len() || block_size > cidr.max_prefix_len() {
            return None;
        }
        Some(Pool {
            name: p.metadata.name.clone(),
            cidr,
            block_size,
            disabled: p.spec.disabled,
            node_selector: p.spec.node_selector.clone(),
            namespace_selector: p.spec.namespace_selector.clone(),
            allowed_uses: if p.spec.allowed_uses.is_empty() {
                vec!["Workload".into(), "Tunnel".into()]
            } else {
                p.spec.allowed_uses.clone()
            },
            assignment_mode: p
                .spec
                .assignment_mode
                .clone()
                .unwrap_or_else(|| "Automatic".into()),
        })
    }

    pub fn version(&self) -> u8 {
        crate::model::ip_version(&self.cidr)
    }

    pub fn allows(&self, use_: IntendedUse) -> bool {
        self.allowed_uses.iter().any(|u| u == use_.as_str())
    }

    /// Whether the pool's `nodeSelector` selects a node with these labels (empty = all).
    pub fn selects_node(&self, labels: &BTreeMap<String, String>) -> Result<bool, IpamError> {
        self.selects(&self.node_selector, labels)
    }

    /// Whether the pool's `namespaceSelector` selects the namespace (empty = all; a request
    /// without a namespace is evaluated against no labels, as Calico does).
    pub fn selects_namespace(
        &self,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Result<bool, IpamError> {
        let empty = BTreeMap::new();
        self.selects(&self.namespace_selector, labels.unwrap_or(&empty))
    }

    fn selects(&self, sel: &str, labels: &BTreeMap<String, String>) -> Result<bool, IpamError> {
        if sel.is_empty() {
            return Ok(true);
        }
        let s = calico_selector::parse(sel).map_err(|e| IpamError::BadPoolSelector {
            pool: self.name.clone(),
            reason: e.to_string(),
        })?;
        Ok(s.evaluate(labels))
    }

    /// The block of this pool containing `ip`.
    pub fn block_for(&self, ip: IpAddr) -> Option<IpNet> {
        crate::blockgen::block_containing(ip, self.block_size)
    }
}

/// Inputs of pool selection for one request.
#[derive(Debug, Clone)]
pub struct PoolQuery<'a> {
    /// Explicitly requested pools by CIDR (CNI `ipv4_pools`, pod/namespace annotations).
    pub requested: &'a [IpNet],
    pub node_labels: &'a BTreeMap<String, String>,
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// Longest block prefix usable (shorter when host-reserved addresses need room).
    pub max_prefix_len: Option<u8>,
}

/// Pools of `version` a request may use, in name order (Calico lists pools sorted by name):
/// requested pools unconditionally (each must exist and be enabled), else every enabled
/// `Automatic` pool whose node and namespace selectors match. Returns `(selecting, enabled)`.
pub fn determine_pools(
    all: &[Pool],
    version: u8,
    q: &PoolQuery<'_>,
) -> Result<(Vec<Pool>, Vec<Pool>), IpamError> {
    let mut enabled: Vec<Pool> = all
        .iter()
        .filter(|p| !p.disabled && p.version() == version)
        .filter(|p| q.max_prefix_len.is_none_or(|m| p.block_size <= m))
        .cloned()
        .collect();
    enabled.sort_by(|a, b| a.name.cmp(&b.name));
    if enabled.is_empty() {
        return Err(IpamError::NoQualifiedPool(format!(
            "no enabled IPv{version} pool"
        )));
    }
    if !q.requested.is_empty() {
        let mut chosen = Vec::new();
        for r in q.requested {
            let r = r.trunc();
            match enabled.iter().find(|p| p.cidr == r) {
                Some(p) => chosen.push(p.clone()),
                None => return Err(IpamError::PoolNotFound(r.to_string())),
            }
        }
        return Ok((chosen, enabled));
    }
    let mut selecting = Vec::new();
    for p in &enabled {
        if p.assignment_mode != "Automatic" {
            continue;
        }
        if !p.selects_node(q.node_labels)? || !p.selects_namespace(q.namespace_labels)? {
            continue;
        }
        selecting.push(p.clone());
    }
    Ok((selecting, enabled))
}

/// The subset of `pools` allowing `use_`.
pub fn filter_by_use(pools: &[Pool], use_: IntendedUse) -> Vec<Pool> {
    pools.iter().filter(|p| p.allows(use_)).cloned().collect()
}

/// The pool containing `ip`, if any.
pub fn pool_for_ip(pools: &[Pool], ip: IpAddr) -> Option<&Pool> {
    pools.iter().find(|p| p.cidr.contains(&ip))
}
