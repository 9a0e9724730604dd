//! The `calico-ipam` plugin's verbs (`cni-plugin/pkg/ipamplugin/ipam_plugin.go`), with the
//! allocation done by calico-node's IPAM service over its socket instead of in-process.
//!
//! **ADD**: handle `<network>.<containerID>`, one IPv4 address unless `assign_ipv4` is
//! "false", one IPv6 address when `assign_ipv6` is "true", from `ipv4_pools` / `ipv6_pools`
//! (CIDRs, or IP pool names resolved through the datastore as `utils.ResolvePools` does),
//! with the attributes `node`, `timestamp` and, for pods, `pod` and `namespace`. The result has
//! one address per family with its block's prefix and one route per address to that prefix,
//! exactly as Calico's plugin prints them. A partial dual-stack assignment is released again.
//! With `IP=<addr>` in `CNI_ARGS` exactly that address is assigned instead (Calico's
//! `AssignIP` with the same handle, attributes and workload use; the `assign_ipv4/6` flags and
//! the pools are not consulted, as in Calico) and returned as a host prefix (/32, /128) with a
//! route to itself. We also accept one address of each family, `IP=<v4>,<v6>`: the agent
//! assigns both or neither. An address already held fails the ADD with the agent's
//! `address_in_use` refusal and holds nothing.
//!
//! **DEL** releases by handle, then by the pre-v3 workload handle (the container ID, or
//! `<namespace>.<pod>`); nothing held is success. **CHECK** (Calico has none) verifies that
//! every address of the prevResult is still allocated to this container's handle. **STATUS**
//! reports code 50 when the agent does not answer or serves another node. **GC** releases the
//! handles of this network on this node whose container is not in
//! `cni.dev/valid-attachments`, continuing past failures and reporting them together.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::{
    AgentError, AllocationSource, AssignIpsRequest, AssignRequest, HostEnv, IpamAgent, PoolSource,
    Request, Verbs, container_of_handle, host_prefix,
};
use crate::args::{CniArgs, Workload};
use crate::spec::{CniError, CniResult, ErrorCode, IpConfig, Route};

/// The `calico-ipam` plugin over its dependencies.
pub struct IpamPlugin<A, P, L> {
    pub agent: A,
    pub pools: P,
    pub allocations: L,
    pub host: HostEnv,
}

/// An agent failure as a CNI error: an agent that is down is a transient condition (code 11,
/// "try again later"), a refusal is the agent's message.
pub fn agent_error(what: &str, e: AgentError) -> CniError {
    match e {
        AgentError::Unreachable(m) => {
            CniError::new(ErrorCode::TRY_AGAIN_LATER, format!("{what}: {m}"))
        }
        other => CniError::internal(format!("{what}: {other}")),
    }
}

/// Calico `ResolvePools`: each entry is a CIDR (taken as its network) or the name of an IP
/// pool; every result must be of the requested family.
pub fn resolve_pools(
    entries: &[String],
    v4: bool,
    source: &dyn PoolSource,
) -> Result<Vec<IpNet>, CniError> {
    let mut out = Vec::with_capacity(entries.len());
    for p in entries {
        let cidr = match p.parse::<IpNet>() {
            Ok(n) => n.trunc(),
            Err(_) => source.pool_cidr(p)?.ok_or_else(|| {
                CniError::invalid_netconf(format!(
                    "error parsing pool {p:?}: it is neither a CIDR nor the name of an IP pool"
                ))
            })?,
        };
        match (v4, &cidr) {
            (true, IpNet::V6(_)) => {
                return Err(CniError::invalid_netconf(format!(
                    "ipam.ipv4_pools: {:?} isn't a IPv4 address",
                    cidr.addr()
                )));
            }
            (false, IpNet::V4(_)) => {
                return Err(CniError::invalid_netconf(format!(
                    "ipam.ipv6_pools: {:?} isn't a IPv6 address",
                    cidr.addr()
                )));
            }
            _ => {}
        }
        out.push(cidr);
    }
    Ok(out)
}

impl<A: IpamAgent, P: PoolSource, L: AllocationSource> IpamPlugin<A, P, L> {
    fn workload(&self, req: &Request<'_>) -> Result<Workload, CniError> {
        let node = req.conf.nodename(|| (self.host.hostname)())?;
        let args = CniArgs::parse(&req.env.args)?;
        let w = Workload::identify(&args, &node, &req.env.container_id, &req.env.ifname);
        // Calico computes the endpoint name here too, which validates the identifiers.
        w.wep_name()?;
        Ok(w)
    }

    /// ADD with `IP=` (ipam_plugin.go, the `ipamArgs.IP != nil` branch).
    fn add_specific(
        &self,
        w: &Workload,
        handle: String,
        attrs: BTreeMap<String, String>,
        ips: &[IpAddr],
    ) -> Result<CniResult, CniError> {
        let list = ips
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(",");
        tracing::info!(handle = %handle, ips = %list, "assigning the requested addresses");
        let request = AssignIpsRequest {
            node: w.node.clone(),
            handle_id: handle.clone(),
            ips: ips.to_vec(),
            attrs,
        };
        let got = self.agent.assign_ips(&request).map_err(|e| {
            agent_error(
                &format!(
                    "failed to assign the requested {} {list} (IP= in CNI_ARGS)",
                    if ips.len() == 1 {
                        "address"
                    } else {
                        "addresses"
                    }
                ),
                e,
            )
        })?;
        // The agent must have assigned exactly what was asked; anything else is given back
        // rather than plumbed.
        let mut given: Vec<IpAddr> = got.ipv4.iter().chain(&got.ipv6).map(|n| n.addr()).collect();
        let mut wanted = ips.to_vec();
        given.sort();
        wanted.sort();
        if given != wanted {
            if !given.is_empty()
                && let Err(e) = self.agent.release_ips(&w.node, &given, Some(&handle))
            {
                tracing::warn!(error = %e, "failed to release a mismatched assignment");
            }
            return Err(CniError::internal(format!(
                "calico-node assigned [{}] when asked for {list}",
                given
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            )));
        }
        // Calico returns the address itself (/32, /128), not its block, and the usual route
        // to each address; IPv4 first, as for auto-assigned addresses.
        let mut r = CniResult::default();
        for ip in ips
            .iter()
            .filter(|i| i.is_ipv4())
            .chain(ips.iter().filter(|i| i.is_ipv6()))
        {
            let net = IpNet::from(*ip);
            r.ips.push(IpConfig {
                interface: None,
                address: net,
                gateway: None,
            });
            r.routes.push(Route::to(net));
        }
        Ok(r)
    }
}

impl<A: IpamAgent, P: PoolSource, L: AllocationSource> Verbs for IpamPlugin<A, P, L> {
    fn add(&self, req: &Request<'_>) -> Result<CniResult, CniError> {
        let conf = req.conf;
        let w = self.workload(req)?;
        let args = CniArgs::parse(&req.env.args)?;
        let handle = w.handle_id(&conf.name);
        if !args.ips.is_empty() {
            return self.add_specific(&w, handle, w.ipam_attributes((self.host.now)()), &args.ips);
        }
        let (num4, num6) = conf.ipam.counts();
        if num4 == 0 && num6 == 0 {
            return Err(CniError::invalid_netconf(
                "ipam: assign_ipv4 is \"false\" and assign_ipv6 is not \"true\": no address to assign",
            ));
        }
        let ipv4_pools = resolve_pools(&conf.ipam.ipv4_pools, true, &self.pools)?;
        let ipv6_pools = resolve_pools(&conf.ipam.ipv6_pools, false, &self.pools)?;
        let request = AssignRequest {
            node: w.node.clone(),
            handle_id: handle.clone(),
            num4,
            num6,
            ipv4_pools,
            ipv6_pools,
            attrs: w.ipam_attributes((self.host.now)()),
        };
        tracing::info!(handle = %handle, num4, num6, "assigning addresses");
        let got = self
            .agent
            .assign(&request)
            .map_err(|e| agent_error("failed to assign addresses", e))?;

        let short = |fam: &str, want: u32, have: usize| {
            (have < want as usize).then(|| format!("{fam}: got {have} of {want}"))
        };
        let shortfalls: Vec<String> = [
            short("IPv4", num4, got.ipv4.len()),
            short("IPv6", num6, got.ipv6.len()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !shortfalls.is_empty() {
            // No partial dual-stack assignment survives (ipam_plugin.go releases the family
            // that succeeded).
            let given: Vec<_> = got.ipv4.iter().chain(&got.ipv6).map(|n| n.addr()).collect();
            if !given.is_empty()
                && let Err(e) = self.agent.release_ips(&w.node, &given, Some(&handle))
            {
                tracing::warn!(error = %e, "failed to release a partial assignment");
            }
            return Err(CniError::internal(format!(
                "failed to request addresses: {}",
                shortfalls.join(", ")
            )));
        }

        let mut r = CniResult::default();
        for net in got
            .ipv4
            .iter()
            .take(num4 as usize)
            .chain(got.ipv6.iter().take(num6 as usize))
        {
            r.ips.push(IpConfig {
                interface: None,
                address: *net,
                gateway: None,
            });
            r.routes.push(Route::to(*net));
        }
        Ok(r)
    }

    fn del(&self, req: &Request<'_>) -> Result<(), CniError> {
        let w = self.workload(req)?;
        let handle = w.handle_id(&req.conf.name);
        let n = self
            .agent
            .release_handle(&w.node, &handle)
            .map_err(|e| agent_error(&format!("failed to release handle {handle}"), e))?;
        tracing::info!(handle = %handle, released = n, "released addresses by handle");
        let legacy = w.legacy_handle_id();
        let n = self
            .agent
            .release_handle(&w.node, &legacy)
            .map_err(|e| agent_error(&format!("failed to release handle {legacy}"), e))?;
        if n > 0 {
            tracing::info!(handle = %legacy, released = n, "released addresses by workload ID");
        }
        Ok(())
    }

    fn check(&self, req: &Request<'_>) -> Result<(), CniError> {
        let w = self.workload(req)?;
        let Some(prev) = req.conf.prev_result()? else {
            return Err(CniError::invalid_netconf(
                "CHECK needs the prevResult of the ADD (SPEC.md: the runtime must include it)",
            ));
        };
        self.agent
            .ping()
            .map_err(|e| agent_error("calico-node's IPAM service", e))?;
        let handle = w.handle_id(&req.conf.name);
        let allocs = self.allocations.allocations()?;
        let mut problems = Vec::new();
        for ip in &prev.ips {
            let addr = ip.address.addr();
            match allocs.iter().find(|a| a.ip == addr) {
                None => problems.push(format!("{} is not allocated", host_prefix(&ip.address))),
                Some(a) if a.handle_id.as_deref() != Some(handle.as_str()) => {
                    problems.push(format!(
                        "{addr} is allocated to handle {:?}, not {handle:?}",
                        a.handle_id.as_deref().unwrap_or("")
                    ))
                }
                Some(_) => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CniError::internal(format!(
                "IPAM CHECK of {} failed: {}",
                req.env.container_id,
                problems.join("; ")
            )))
        }
    }

    fn status(&self, req: &Request<'_>) -> Result<(), CniError> {
        let not_available = |detail: String| {
            CniError::new(
                ErrorCode::PLUGIN_NOT_AVAILABLE,
                "calico-node's IPAM service is not available",
            )
            .with_details(detail)
        };
        let served = self
            .agent
            .ping()
            .map_err(|e| not_available(e.to_string()))?;
        let node = req.conf.nodename(|| (self.host.hostname)())?;
        if served != node {
            return Err(not_available(format!(
                "the IPAM service serves node {served:?}, but this plugin runs as node {node:?}"
            )));
        }
        Ok(())
    }

    fn gc(&self, req: &Request<'_>) -> Result<(), CniError> {
        let conf = req.conf;
        let Some(valid) = &conf.valid_attachments else {
            return Err(CniError::invalid_netconf(
                "GC needs cni.dev/valid-attachments (the list of attachments to keep)",
            ));
        };
        let valid: BTreeSet<&str> = valid.iter().map(|a| a.container_id.as_str()).collect();
        let node = conf.nodename(|| (self.host.hostname)())?;
        let stale: BTreeSet<String> = self
            .allocations
            .allocations()?
            .into_iter()
            .filter(|a| a.attrs.get("node").map(String::as_str) == Some(node.as_str()))
            .filter_map(|a| a.handle_id)
            .filter(|h| container_of_handle(h, &conf.name).is_some_and(|c| !valid.contains(c)))
            .collect();
        let mut errors = Vec::new();
        for h in &stale {
            tracing::info!(handle = %h, "GC: releasing the addresses of a stale attachment");
            if let Err(e) = self.agent.release_handle(&node, h) {
                errors.push(format!("releasing handle {h}: {e}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CniError::internal(format!(
                "GC incomplete: {}",
                errors.join("; ")
            )))
        }
    }
}
