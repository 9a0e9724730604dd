//! `calicoctl ipam check` (`commands/ipam/check.go`): cross-references every IPAM allocation
//! with the nodes and workload endpoints using addresses, finds leaked addresses and handles,
//! addresses in use without an allocation, inconsistent blocks, and (our addition) block
//! affinities of nodes that no longer exist; optionally writes Calico's report.
//!
//! Differences from Calico, each on the safe side:
//! - There is no Kubernetes API here, so LoadBalancer services cannot be listed: allocations
//!   carrying a `service` attribute (what Calico's LoadBalancer controller writes) are taken to
//!   be in use, rather than reported as leaked and later released.
//! - Windows-reserved addresses are marked in use in the report (Calico records the owner
//!   before the allocation exists, so its report says `inUse: false` for them and a release
//!   from that report would free them).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use anyhow::{Context, anyhow};
use calico_api::clusterinfo::ClusterInformation;
use calico_api::ippool::IPPool;
use calico_api::node::Node;
use calico_api::workloadendpoint::WorkloadEndpoint;
use calico_ipam::model::{self, AllocationAttribute, AllocationBlock, WINDOWS_RESERVED_HANDLE};
use chrono::{DateTime, Utc};
use ipnet::IpNet;

use super::Ctx;
use super::report::{Allocation, CheckReport, HandleInfo, NodeAffinity};
use super::show::load_blocks;

pub struct CheckOptions {
    pub show_all_ips: bool,
    pub show_problem_ips: bool,
    pub out_file: Option<String>,
    pub version: String,
}

/// An allocation plus what `GetAttrString` prints for it.
struct Rec {
    alloc: Allocation,
    attrs: String,
}

/// `kvsFormat`: sorted `k=v` pairs joined by commas.
fn kvs_format(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `formatAttrs`: `Main:<handle> Extra:<k=v,...>[ Alternate:<k=v,...>]`.
pub fn format_attrs(a: &AllocationAttribute) -> String {
    let primary = a.handle_id.as_deref().unwrap_or("<none>");
    let mut s = format!("Main:{primary} Extra:{}", kvs_format(&a.active_owner_attrs));
    if !a.alternate_owner_attrs.is_empty() {
        s.push_str(&format!(
            " Alternate:{}",
            kvs_format(&a.alternate_owner_attrs)
        ));
    }
    s
}

/// Addresses in a block's CIDR (`NumAddresses`, from the CIDR, not from the stored arrays).
fn cidr_addresses(cidr: &IpNet) -> usize {
    let bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    1usize.checked_shl(bits).unwrap_or(usize::MAX)
}

/// `validateBlock`: every allocation points at an attribute, every attribute is used and not
/// released in the future, the free list is in range, unique and disjoint from the
/// allocations, and free + allocated = the block's size.
pub fn validate_block(b: &AllocationBlock, now: DateTime<Utc>) -> Result<(), String> {
    let n = cidr_addresses(&b.cidr);
    let mut seen_attrs = BTreeSet::new();
    let mut seen_ords = BTreeSet::new();
    for o in 0..n.min(b.allocations.len()) {
        let Some(idx) = b.allocations[o] else {
            continue;
        };
        if idx >= b.attributes.len() {
            return Err(format!(
                "allocation {o} indexes a nonexistent attribute {idx}"
            ));
        }
        seen_attrs.insert(idx);
        seen_ords.insert(o);
    }
    for (i, a) in b.attributes.iter().enumerate() {
        if !seen_attrs.contains(&i) {
            return Err(format!(
                "attribute index {i} exists but is not indexed by an allocation"
            ));
        }
        if a.released_at.is_some_and(|t| t.0 > now) {
            return Err(format!(
                "attribute index {i} has releasedAt in the future, suggesting clock skew"
            ));
        }
    }
    for (i, o) in b.unallocated.iter().enumerate() {
        if *o >= b.allocations.len() {
            return Err(format!(
                "ordinal {o} appears in the Unallocated array but is out of the block"
            ));
        }
        if b.unallocated[..i].contains(o) {
            return Err(format!(
                "ordinal {o} appears more than once in Unallocated array"
            ));
        }
        if seen_ords.contains(o) {
            return Err(format!(
                "ordinal {o} is allocated but appears in Unallocated"
            ));
        }
    }
    if b.unallocated.len() + seen_ords.len() != n {
        return Err(format!(
            "expected {n} addresses in this block, but Unallocated ({}) + Allocated ({}) = {}",
            b.unallocated.len(),
            seen_ords.len(),
            b.unallocated.len() + seen_ords.len()
        ));
    }
    Ok(())
}

/// `normaliseIP`: an address or CIDR, as its address text.
fn normalise_ip(s: &str) -> Option<String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    s.parse::<IpNet>().ok().map(|n| n.addr().to_string())
}

struct Checker<'a> {
    opts: &'a CheckOptions,
    allocations: BTreeMap<String, Vec<Rec>>,
    by_node: BTreeMap<String, usize>,
    in_use_ips: BTreeMap<String, Vec<String>>,
    in_use_handles: BTreeSet<String>,
}

impl Checker<'_> {
    /// `recordAllocation`.
    fn record_allocation(&mut self, b: &AllocationBlock, ord: usize) {
        let ip = b.ip_at(ord).to_string();
        let mut alloc = Allocation {
            ip: ip.clone(),
            ..Default::default()
        };
        let block_affinity = b
            .affinity
            .as_deref()
            .and_then(|a| a.strip_prefix("host:"))
            .unwrap_or("")
            .to_string();
        let mut node = block_affinity.clone();
        let attr = b.allocations[ord].and_then(|i| b.attributes.get(i));
        let mut windows_reserved = false;
        if let Some(a) = attr {
            match a.handle_id.as_deref() {
                Some(WINDOWS_RESERVED_HANDLE) => windows_reserved = true,
                Some(h) => {
                    alloc.handle = h.to_string();
                    self.in_use_handles.insert(h.to_string());
                }
                None => {}
            }
            alloc.cooling_down = a.released_at.is_some();
            let get = |k: &str| a.active_owner_attrs.get(k).cloned().unwrap_or_default();
            if !get(model::attr::NODE).is_empty() {
                node = get(model::attr::NODE);
            }
            alloc.pod = get(model::attr::POD);
            alloc.namespace = get(model::attr::NAMESPACE);
            alloc.type_ = get(model::attr::TYPE);
            alloc.creation_timestamp = get(model::attr::TIMESTAMP);
        }
        alloc.sequence_number = Some(b.sequence_of(ord));
        alloc.borrowed = node != block_affinity;
        alloc.node = node.clone();
        let attrs = attr.map(format_attrs).unwrap_or_else(|| "<missing>".into());
        if self.opts.show_all_ips {
            println!("  {ip} allocated; attrs {attrs}");
        }
        *self.by_node.entry(node).or_insert(0) += 1;
        self.allocations
            .entry(ip.clone())
            .or_default()
            .push(Rec { alloc, attrs });
        if windows_reserved {
            self.record_in_use_ip(&ip, "Reserved for Windows");
        } else if let Some(svc) = attr.and_then(|a| a.active_owner_attrs.get(model::attr::SERVICE))
        {
            let ns = attr
                .and_then(|a| a.active_owner_attrs.get(model::attr::NAMESPACE))
                .cloned()
                .unwrap_or_default();
            self.record_in_use_ip(&ip, &format!("Service({ns}/{svc})"));
        }
    }

    /// `recordInUseIP`.
    fn record_in_use_ip(&mut self, ip: &str, name: &str) {
        if self.opts.show_all_ips {
            println!("  {ip} belongs to {name}");
        }
        self.in_use_ips
            .entry(ip.to_string())
            .or_default()
            .push(name.to_string());
        if let Some(recs) = self.allocations.get_mut(ip) {
            for r in recs {
                r.alloc.in_use = true;
                r.alloc
                    .owners
                    .get_or_insert_with(Vec::new)
                    .push(name.to_string());
            }
        }
    }
}

/// `getNodeIPs`: a node's VXLAN, WireGuard and IPIP tunnel addresses (IPv4, as Calico).
fn node_ips(n: &Node) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let name = &n.metadata.name;
    let mut add = |field: &str, v: &str| -> anyhow::Result<()> {
        if !v.is_empty() {
            out.push(
                normalise_ip(v)
                    .ok_or_else(|| anyhow!("failed to parse {field} ({v}) of node {name}"))?,
            );
        }
        Ok(())
    };
    add("IPv4VXLANTunnelAddr", &n.spec.ipv4_vxlan_tunnel_addr)?;
    if let Some(w) = &n.spec.wireguard {
        add("Wireguard.InterfaceIPv4Address", &w.interface_ipv4_address)?;
    }
    if let Some(b) = &n.spec.bgp {
        add("IPv4IPIPTunnelAddr", &b.ipv4_ipip_tunnel_addr)?;
    }
    Ok(out)
}

pub async fn check_ipam(ctx: &Ctx, opts: &CheckOptions) -> anyhow::Result<()> {
    println!("Checking IPAM for inconsistencies...");
    println!();

    let ci: ClusterInformation = ctx.client.get_as("", "default").await?;
    let mut report = CheckReport {
        version: opts.version.clone(),
        cluster_guid: ci.spec.cluster_guid.clone(),
        datastore_locked: ci.spec.datastore_ready == Some(false),
        cluster_info_revision: ci.metadata.resource_version.clone(),
        cluster_type: ci.spec.cluster_type.clone(),
        ..Default::default()
    };

    let mut c = Checker {
        opts,
        allocations: BTreeMap::new(),
        by_node: BTreeMap::new(),
        in_use_ips: BTreeMap::new(),
        in_use_handles: BTreeSet::new(),
    };

    println!("Loading all IPAM blocks...");
    let blocks = load_blocks(ctx)
        .await
        .map_err(|e| anyhow!("failed to list IPAM blocks: {e}"))?;
    println!("Found {} IPAM blocks.", blocks.len());
    let mut num_allocs = 0;
    for b in &blocks {
        println!(
            " IPAM block {} affinity={}:",
            b.cidr,
            b.affinity.as_deref().unwrap_or("<none>")
        );
        for ord in 0..b.allocations.len() {
            if b.allocations[ord].is_some() {
                num_allocs += 1;
                c.record_allocation(b, ord);
            }
        }
    }
    println!("IPAM blocks record {num_allocs} allocations.");
    println!();

    println!("Loading all IPAM pools...");
    let (pools, _) = ctx
        .client
        .list_as::<IPPool>(None)
        .await
        .map_err(|e| anyhow!("failed to load IP pools: {e}"))?;
    let mut active_pools: Vec<IpNet> = Vec::new();
    for p in pools.iter().filter(|p| !p.spec.disabled) {
        println!("  {}", p.spec.cidr);
        let cidr: IpNet = p
            .spec
            .cidr
            .parse()
            .map_err(|e| anyhow!("failed to parse IP pool CIDR: {e}"))?;
        active_pools.push(cidr.trunc());
    }
    println!("Found {} active IP pools.", active_pools.len());
    println!();

    println!("Loading all nodes.");
    let (nodes, _) = ctx
        .client
        .list_as::<Node>(None)
        .await
        .map_err(|e| anyhow!("failed to list nodes: {e}"))?;
    let node_names: BTreeSet<String> = nodes.iter().map(|n| n.metadata.name.clone()).collect();
    let mut num_node_ips = 0;
    for n in &nodes {
        for ip in node_ips(n)? {
            c.record_in_use_ip(&ip, &format!("Node({})", n.metadata.name));
            num_node_ips += 1;
        }
    }
    println!("Found {num_node_ips} node tunnel IPs.");
    println!();

    println!("Loading all service load balancer IPs.");
    let lb = c
        .allocations
        .values()
        .flatten()
        .filter(|r| {
            r.alloc
                .owners
                .iter()
                .flatten()
                .any(|o| o.starts_with("Service("))
        })
        .count();
    println!(
        "No Kubernetes API in this datastore: {lb} service load balancer IP allocation(s) assumed in use."
    );
    println!();

    println!("Loading all workload endpoints.");
    let (weps, _) = ctx
        .client
        .list_as::<WorkloadEndpoint>(None)
        .await
        .map_err(|e| anyhow!("failed to list workload endpoints: {e}"))?;
    let mut num_wep_ips = 0;
    for w in &weps {
        for a in &w.spec.ip_networks {
            let ip = normalise_ip(a).ok_or_else(|| {
                anyhow!(
                    "failed to parse IP ({a}) of workload {}/{}",
                    w.metadata.namespace,
                    w.metadata.name
                )
            })?;
            c.record_in_use_ip(
                &ip,
                &format!("Workload({}/{})", w.metadata.namespace, w.metadata.name),
            );
            num_wep_ips += 1;
        }
    }
    println!("Found {num_wep_ips} workload IPs.");
    println!("Workloads and nodes are using {} IPs.", c.in_use_ips.len());
    println!();

    println!("Loading all handles");
    let handle_kvs = ctx
        .client
        .datastore()
        .list(model::HANDLE_PREFIX)
        .await
        .map_err(|e| anyhow!("failed to list handles: {e}"))?;
    let mut handles: BTreeMap<String, HandleInfo> = BTreeMap::new();
    for kv in handle_kvs.kvs {
        let id = kv.key[model::HANDLE_PREFIX.len()..].to_string();
        handles.insert(
            id.clone(),
            HandleInfo {
                id,
                uid: None,
                revision: kv.mod_revision.to_string(),
            },
        );
    }

    const NUM_NODES_TO_PRINT: usize = 20;
    println!("Looking for top (up to {NUM_NODES_TO_PRINT}) nodes by allocations...");
    let mut all_nodes: Vec<(&String, &usize)> = c.by_node.iter().collect();
    // Most allocations first; ties by name so the output is stable.
    all_nodes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (n, count) in all_nodes.iter().take(NUM_NODES_TO_PRINT) {
        println!("  {n} has {count} allocations");
    }
    if let Some((_, max)) = all_nodes.first() {
        let median = all_nodes[all_nodes.len() / 2].1;
        println!("Node with most allocations has {max}; median is {median}");
    }
    println!();

    let mut num_problems = 0;
    println!("Scanning for IPs that are allocated but not actually in use...");
    let mut leaked_ips = 0;
    for (ip, recs) in &c.allocations {
        if c.in_use_ips.contains_key(ip) {
            continue;
        }
        // Addresses cooling down after release are not leaks.
        if recs.iter().any(|r| r.alloc.cooling_down) {
            continue;
        }
        if opts.show_problem_ips {
            for r in recs {
                println!("  {ip} leaked; attrs {}", r.attrs);
            }
        }
        leaked_ips += 1;
    }
    num_problems += leaked_ips;
    println!("Found {leaked_ips} IPs that are allocated in IPAM but not actually in use.");

    println!("Scanning for IPs that are in use by a workload or node but not allocated in IPAM...");
    let mut not_allocated = 0;
    let mut non_calico = 0;
    for (ip, owners) in &c.in_use_ips {
        if opts.show_problem_ips && owners.len() > 1 {
            println!("  {ip} has multiple owners.");
        }
        if c.allocations.contains_key(ip) {
            continue;
        }
        let parsed: Option<IpAddr> = ip.parse().ok();
        let in_pool = parsed.is_some_and(|a| active_pools.iter().any(|p| p.contains(&a)));
        if !in_pool {
            if opts.show_problem_ips {
                for o in owners {
                    println!("  {ip} in use by {o} is not in any active IP pool.");
                }
            }
            non_calico += 1;
            continue;
        }
        if opts.show_problem_ips {
            for o in owners {
                println!(
                    "  {ip} in use by {o} and in active IPAM pool but has no IPAM allocation."
                );
            }
        }
        not_allocated += 1;
    }
    num_problems += non_calico + not_allocated;
    println!("Found {non_calico} in-use IPs that are not in active IP pools.");
    println!(
        "Found {not_allocated} in-use IPs that are in active IP pools but have no corresponding IPAM allocation."
    );
    println!();

    println!("Scanning for IPAM handles with no matching IPs...");
    let mut good = 0;
    for (id, h) in &handles {
        if c.in_use_handles.contains(id) {
            good += 1;
            continue;
        }
        if opts.show_all_ips {
            println!("  {id} doesn't have any active IPs.");
        }
        num_problems += 1;
        report.leaked_handles.push(h.clone());
    }
    println!(
        "Found {} handles with no matching IPs (and {good} handles with matches).",
        report.leaked_handles.len()
    );

    println!("Scanning for IPs with missing handle...");
    let mut missing = 0;
    for id in &c.in_use_handles {
        if handles.contains_key(id) {
            continue;
        }
        if opts.show_problem_ips {
            println!("  {id} is in use in a block but doesn't exist.");
        }
        missing += 1;
    }
    println!("Found {missing} handles mentioned in blocks with no matching handle resource.");

    // Our addition: blocks and affinities left behind by deleted nodes (Calico's
    // kube-controllers clean these up; without them nothing else does).
    println!("Scanning for block affinities of nodes that no longer exist...");
    let mut orphaned: BTreeSet<NodeAffinity> = BTreeSet::new();
    let aff_kvs = ctx
        .client
        .datastore()
        .list("/calico/ipam/v2/host/")
        .await
        .map_err(|e| anyhow!("failed to list block affinities: {e}"))?;
    for kv in &aff_kvs.kvs {
        let rest = &kv.key["/calico/ipam/v2/host/".len()..];
        let Some((node, _)) = rest.split_once('/') else {
            continue;
        };
        let Ok(cidr) = model::cidr_from_key(&kv.key) else {
            continue;
        };
        if !node_names.contains(node) {
            orphaned.insert(NodeAffinity {
                node: node.to_string(),
                block: cidr.to_string(),
            });
        }
    }
    for b in &blocks {
        if let Some(node) = b.affinity.as_deref().and_then(|a| a.strip_prefix("host:"))
            && !node_names.contains(node)
        {
            orphaned.insert(NodeAffinity {
                node: node.to_string(),
                block: b.cidr.to_string(),
            });
        }
    }
    if opts.show_problem_ips {
        for a in &orphaned {
            println!(
                "  Block {} is affine to node {}, which no longer exists.",
                a.block, a.node
            );
        }
    }
    num_problems += orphaned.len();
    println!(
        "Found {} block affinities of nodes that no longer exist.",
        orphaned.len()
    );
    report.deleted_node_affinities = orphaned.into_iter().collect();

    println!("Validating IPAMBlock structures...");
    let now = Utc::now();
    let mut invalid = 0;
    for b in &blocks {
        if let Err(e) = validate_block(b, now) {
            println!("  IPAMBlock BlockKey(cidr={}) is invalid: {e}", b.cidr);
            num_problems += 1;
            invalid += 1;
        }
    }
    println!("Found {invalid} invalid IPAMBlocks.");

    println!("Check complete; found {num_problems} problems.");

    if let Some(path) = &opts.out_file {
        report.allocations = c
            .allocations
            .into_iter()
            .map(|(ip, recs)| (ip, recs.into_iter().map(|r| r.alloc).collect()))
            .collect();
        std::fs::write(path, report.to_text())
            .with_context(|| format!("cannot write the report to {path}"))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use calico_ipam::model::Time;

    fn blk(allocs: Vec<Option<usize>>, unalloc: Vec<usize>, attrs: usize) -> AllocationBlock {
        let mut b = AllocationBlock::new("10.0.0.0/30".parse().unwrap(), None, 0);
        b.allocations = allocs;
        b.unallocated = unalloc;
        b.attributes = (0..attrs)
            .map(|i| AllocationAttribute {
                handle_id: Some(format!("h{i}")),
                ..Default::default()
            })
            .collect();
        b
    }

    /// Calico's `validateBlock` table (check_test.go), re-encoded.
    #[test]
    fn validate_block_table() {
        let now = Utc::now();
        let cases: Vec<(AllocationBlock, Option<&str>)> = vec![
            (blk(vec![None; 4], vec![0, 1, 2, 3], 0), None),
            (
                blk(vec![Some(99), None, None, None], vec![1, 2, 3], 0),
                Some("allocation 0 indexes a nonexistent attribute 99"),
            ),
            (
                blk(vec![None; 4], vec![0, 1, 2, 3], 1),
                Some("attribute index 0 exists but is not indexed by an allocation"),
            ),
            (
                blk(vec![None; 4], vec![0, 1, 1, 2, 3], 0),
                Some("ordinal 1 appears more than once in Unallocated array"),
            ),
            (
                blk(vec![None, Some(0), None, None], vec![0, 1, 2, 3], 1),
                Some("ordinal 1 is allocated but appears in Unallocated"),
            ),
            (
                blk(vec![None; 4], vec![0, 2, 3, 99], 0),
                Some("ordinal 99 appears in the Unallocated array but is out of the block"),
            ),
            (
                blk(vec![None, Some(0), Some(0), None], vec![0], 1),
                Some("expected 4 addresses in this block, but Unallocated (1) + Allocated (2) = 3"),
            ),
        ];
        for (b, want) in cases {
            assert_eq!(validate_block(&b, now).err().as_deref(), want);
        }
        let mut b = blk(vec![Some(0), None, None, None], vec![1, 2, 3], 1);
        b.attributes[0].released_at = Some(Time::new(now + chrono::Duration::minutes(1)));
        assert_eq!(
            validate_block(&b, now).unwrap_err(),
            "attribute index 0 has releasedAt in the future, suggesting clock skew"
        );
    }

    #[test]
    fn attrs_format_like_calico() {
        let mut a = AllocationAttribute::default();
        assert_eq!(format_attrs(&a), "Main:<none> Extra:");
        a.handle_id = Some("k8s-pod-network.abc".into());
        a.active_owner_attrs.insert("pod".into(), "p".into());
        a.active_owner_attrs.insert("namespace".into(), "ns".into());
        assert_eq!(
            format_attrs(&a),
            "Main:k8s-pod-network.abc Extra:namespace=ns,pod=p"
        );
        a.alternate_owner_attrs.insert("pod".into(), "q".into());
        assert!(format_attrs(&a).ends_with(" Alternate:pod=q"));
    }

    #[test]
    fn normalise_accepts_addresses_and_cidrs() {
        assert_eq!(normalise_ip("10.0.0.1/32").as_deref(), Some("10.0.0.1"));
        assert_eq!(normalise_ip("fd00::0001/128").as_deref(), Some("fd00::1"));
        assert_eq!(normalise_ip("nope"), None);
    }
}
