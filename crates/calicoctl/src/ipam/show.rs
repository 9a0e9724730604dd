//! `calicoctl ipam show` (`commands/ipam/show.go`): pool/block utilisation, one address's
//! allocation, borrowed addresses and the IPAM configuration.

use std::net::IpAddr;

use anyhow::anyhow;
use calico_api::ipreservation::IPReservation;
use calico_ipam::model::{self, AllocationBlock, IpamConfigRecord};
use calico_ipam::{DatastoreResources, Pool, Reservations, ResourceSource};
use ipnet::IpNet;

use super::Ctx;
use super::gotable::{GoTable, g5, with_percentage};
use super::space;

/// Every block of both families, in key order (Calico's `BlockListOptions{}` list).
pub(super) async fn load_blocks(ctx: &Ctx) -> anyhow::Result<Vec<AllocationBlock>> {
    let resp = ctx
        .client
        .datastore()
        .list("/calico/ipam/v2/assignment/")
        .await?;
    let mut out = Vec::with_capacity(resp.kvs.len());
    for kv in resp.kvs {
        out.push(model::decode::<AllocationBlock>(&kv.key, &kv.value)?);
    }
    Ok(out)
}

/// Every IP pool, enabled or not, in name order (`GetAllPools`).
pub(super) async fn load_pools(ctx: &Ctx) -> anyhow::Result<Vec<Pool>> {
    Ok(DatastoreResources::new(ctx.client.datastore().clone())
        .pools()
        .await?)
}

/// The CIDRs every IPReservation covers (`reservedCIDRs`: trimmed, CIDR or single address,
/// malformed entries skipped).
pub(super) async fn load_reserved_cidrs(ctx: &Ctx) -> anyhow::Result<Vec<IpNet>> {
    let (items, _) = ctx.client.list_as::<IPReservation>(None).await?;
    let mut out = Vec::new();
    for r in &items {
        for c in &r.spec.reserved_cidrs {
            let c = c.trim();
            if c.is_empty() {
                continue;
            }
            let parsed = if c.contains('/') {
                c.parse::<IpNet>().ok()
            } else {
                c.parse::<IpAddr>().ok().map(IpNet::from)
            };
            if let Some(n) = parsed {
                out.push(n.trunc());
            }
        }
    }
    Ok(out)
}

/// Utilisation of one block (`ipam.BlockUtilization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockUse {
    pub cidr: IpNet,
    pub capacity: u128,
    pub in_use: u128,
    pub reserved: u128,
    pub available: u128,
}

/// Utilisation of one pool (`ipam.PoolUtilization`); `cidr: None` is the "orphaned allocation
/// blocks" group of blocks no pool contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUse {
    pub name: String,
    pub cidr: Option<IpNet>,
    pub capacity: u128,
    pub in_use: u128,
    pub reserved: u128,
    pub available: u128,
    pub blocks: Vec<BlockUse>,
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn block_capacity(cidr: &IpNet) -> u128 {
    space::size(cidr)
}

/// `GetUtilization` for every pool: each block goes to the first pool (in name order) it
/// overlaps, else to the orphaned group; pool capacity and reserved counts cover the whole pool
/// CIDR, and pool "free" adds the unreserved space no block covers yet. Unlike Calico, whose
/// orphan group is `0.0.0.0/0` and so silently drops orphaned IPv6 blocks, orphaned blocks of
/// both families are listed.
pub fn utilization(
    pools: &[Pool],
    blocks: &[AllocationBlock],
    reserved_cidrs: &[IpNet],
) -> Vec<PoolUse> {
    let reservations = Reservations::from_cidrs(reserved_cidrs.iter().copied());
    let mut usage: Vec<PoolUse> = pools
        .iter()
        .map(|p| PoolUse {
            name: p.name.clone(),
            cidr: Some(p.cidr.trunc()),
            capacity: 0,
            in_use: 0,
            reserved: 0,
            available: 0,
            blocks: Vec::new(),
        })
        .collect();
    usage.push(PoolUse {
        name: "orphaned allocation blocks".into(),
        cidr: None,
        capacity: 0,
        in_use: 0,
        reserved: 0,
        available: 0,
        blocks: Vec::new(),
    });
    for b in blocks {
        let capacity = block_capacity(&b.cidr);
        let bu = BlockUse {
            cidr: b.cidr,
            capacity,
            in_use: capacity.saturating_sub(b.unallocated.len() as u128),
            reserved: b.num_reserved(&reservations) as u128,
            available: b.num_free(&reservations) as u128,
        };
        let idx = usage
            .iter()
            .position(|u| u.cidr.is_none_or(|c| overlaps(&c, &b.cidr)));
        if let Some(i) = idx {
            usage[i].blocks.push(bu);
        }
    }
    for u in usage.iter_mut() {
        let Some(cidr) = u.cidr else { continue };
        u.in_use = u.blocks.iter().map(|b| b.in_use).sum();
        let in_blocks: u128 = u.blocks.iter().map(|b| b.available).sum();
        let block_cidrs: Vec<IpNet> = u.blocks.iter().map(|b| b.cidr).collect();
        let (capacity, reserved, outside) = space::pool_space(&cidr, reserved_cidrs, &block_cidrs);
        u.capacity = capacity;
        u.reserved = reserved;
        u.available = in_blocks.saturating_add(outside);
    }
    usage
}

fn util_row(kind: &str, cidr: &IpNet, cap: u128, used: u128, res: u128, free: u128) -> Vec<String> {
    let c = space::clamp(cap);
    vec![
        kind.to_string(),
        cidr.to_string(),
        g5(c),
        with_percentage(space::clamp(used), c),
        with_percentage(space::clamp(res), c),
        with_percentage(space::clamp(free), c),
    ]
}

/// The utilisation table (`ShowBlockUtilization`).
pub fn utilization_table(usage: &[PoolUse], show_blocks: bool) -> String {
    let mut t = GoTable::new(&[
        "GROUPING",
        "CIDR",
        "IPS TOTAL",
        "IPS IN USE",
        "IPS RESERVED",
        "IPS FREE",
    ])
    .align_right("IPS TOTAL")
    .align_right("IPS IN USE")
    .align_right("IPS RESERVED")
    .align_right("IPS FREE");
    for u in usage {
        if let Some(c) = &u.cidr {
            t.row(util_row(
                "IP Pool",
                c,
                u.capacity,
                u.in_use,
                u.reserved,
                u.available,
            ));
        }
        if show_blocks {
            for b in &u.blocks {
                t.row(util_row(
                    "Block",
                    &b.cidr,
                    b.capacity,
                    b.in_use,
                    b.reserved,
                    b.available,
                ));
            }
        }
    }
    t.render()
}

pub async fn show_utilization(ctx: &Ctx, show_blocks: bool) -> anyhow::Result<()> {
    let pools = load_pools(ctx).await?;
    let reserved = load_reserved_cidrs(ctx).await?;
    let blocks = load_blocks(ctx).await?;
    print!(
        "{}",
        utilization_table(&utilization(&pools, &blocks, &reserved), show_blocks)
    );
    Ok(())
}

/// `formatOwnerAttrs`: a title and the attributes sorted by key, or nothing when empty.
fn format_owner_attrs(title: &str, attrs: &std::collections::BTreeMap<String, String>) -> String {
    if attrs.is_empty() {
        return String::new();
    }
    let mut s = format!("{title}:\n");
    for (k, v) in attrs {
        s.push_str(&format!("  {k}: {v}\n"));
    }
    s
}

/// `ShowIP`: whether `ip` is allocated and, if so, its handle and owner attributes. Only
/// enabled pools are considered (`getPoolForIP`); an address cooling down after release is an
/// error, as in Calico.
pub async fn show_ip(ctx: &Ctx, ip: IpAddr) -> anyhow::Result<()> {
    let pools = load_pools(ctx).await?;
    let Some(pool) = pools.iter().find(|p| !p.disabled && p.cidr.contains(&ip)) else {
        println!("{ip} is not assigned");
        return Ok(());
    };
    // Read the config as Calico does (a bad stored config is an error here too).
    ctx.ipam.get_config().await?;
    let Some(cidr) = pool.block_for(ip) else {
        println!("{ip} is not assigned");
        return Ok(());
    };
    let key = model::block_key(&cidr);
    let Some(kv) = ctx.client.datastore().get(&key).await? else {
        println!("{ip} is not assigned");
        return Ok(());
    };
    let b: AllocationBlock = model::decode(&kv.key, &kv.value)?;
    let ord = b.ordinal_of(ip)?;
    let Some(attr) = b.allocations[ord].and_then(|i| b.attributes.get(i)) else {
        println!("{ip} is not assigned");
        return Ok(());
    };
    if attr.released_at.is_some() {
        return Err(anyhow!("address {ip} is in cooldown"));
    }
    println!("IP {ip} is in use");
    match &attr.handle_id {
        Some(h) => println!("Handle ID: {}", calico_ipam::block::sanitize_handle(h)),
        None => println!("Handle ID: <none>"),
    }
    let active = format_owner_attrs("Active Owner Attributes", &attr.active_owner_attrs);
    if active.is_empty() {
        println!("No Active Owner attributes defined");
    } else {
        print!("{active}");
    }
    print!(
        "{}",
        format_owner_attrs("Alternate Owner Attributes", &attr.alternate_owner_attrs)
    );
    Ok(())
}

/// One borrowed address (`borrowedIP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Borrowed {
    pub addr: IpAddr,
    pub borrowing_node: String,
    pub block: IpNet,
    pub block_owner: String,
    pub allocation_type: String,
    pub allocated_to: String,
}

/// `getBorrowedIPs`: allocations whose `node` attribute differs from the block's owner (or
/// from a block nobody owns), plus the count of allocations with no `node` attribute, which
/// cannot be classified.
pub fn borrowed_ips(blocks: &[AllocationBlock]) -> (Vec<Borrowed>, usize) {
    let mut out = Vec::new();
    let mut unclassified = 0;
    for b in blocks {
        // Calico splits `host:<name>` on ':' and takes the second part only when there are
        // exactly two.
        let owner = match b.affinity.as_deref() {
            None => String::new(),
            Some(a) => {
                let parts: Vec<&str> = a.split(':').collect();
                if parts.len() == 2 {
                    parts[1].to_string()
                } else {
                    parts[0].to_string()
                }
            }
        };
        for (ord, slot) in b.allocations.iter().enumerate() {
            let Some(idx) = slot else { continue };
            let attrs = b
                .attributes
                .get(*idx)
                .map(|a| &a.active_owner_attrs)
                .cloned()
                .unwrap_or_default();
            let Some(node) = attrs.get(model::attr::NODE) else {
                unclassified += 1;
                continue;
            };
            if *node == owner {
                continue;
            }
            let ns = attrs
                .get(model::attr::NAMESPACE)
                .cloned()
                .unwrap_or_default();
            let (kind, to) = if let Some(vmi) = attrs.get("vmi-name") {
                ("vmi".to_string(), format!("{ns}/{vmi}"))
            } else if let Some(pod) = attrs.get(model::attr::POD) {
                (model::attr::POD.to_string(), format!("{ns}/{pod}"))
            } else if let Some(t) = attrs.get(model::attr::TYPE) {
                (t.clone(), String::new())
            } else {
                (String::new(), String::new())
            };
            out.push(Borrowed {
                addr: b.ip_at(ord),
                borrowing_node: node.clone(),
                block: b.cidr,
                block_owner: owner.clone(),
                allocation_type: kind,
                allocated_to: to,
            });
        }
    }
    (out, unclassified)
}

pub async fn show_borrowed(ctx: &Ctx) -> anyhow::Result<()> {
    let blocks = load_blocks(ctx).await?;
    let (details, unclassified) = borrowed_ips(&blocks);
    let mut t = GoTable::new(&[
        "IP",
        "BORROWING-NODE",
        "BLOCK",
        "BLOCK OWNER",
        "TYPE",
        "ALLOCATED-TO",
    ]);
    for d in details {
        t.row(vec![
            d.addr.to_string(),
            d.borrowing_node,
            d.block.to_string(),
            d.block_owner,
            d.allocation_type,
            d.allocated_to,
        ]);
    }
    print!("{}", t.render());
    if unclassified != 0 {
        println!(
            "\nNote: found {unclassified} IP allocations without an explicit node association. Unable to determine if they are borrowed."
        );
    }
    Ok(())
}

/// The stored IPAM config record, or what Calico's `GetIPAMConfig` returns when there is none
/// (KubeVirt address persistence `Enabled`), with the key's revision.
pub(super) async fn load_config_record(
    ctx: &Ctx,
) -> anyhow::Result<(IpamConfigRecord, Option<i64>)> {
    match ctx.client.datastore().get(model::CONFIG_KEY).await? {
        Some(kv) => Ok((
            model::decode::<IpamConfigRecord>(&kv.key, &kv.value)?,
            Some(kv.mod_revision),
        )),
        None => Ok((
            IpamConfigRecord {
                strict_affinity: false,
                auto_allocate_blocks: true,
                max_blocks_per_host: 0,
                kube_virt_vm_address_persistence: Some("Enabled".into()),
                ip_cooldown_seconds: 0,
            },
            None,
        )),
    }
}

/// The rows of `--show-configuration`: the fields of Go's `ipam.IPAMConfig` in declaration
/// order, each value as Go's `%#v` prints it. For the KubeVirt persistence pointer Go prints a
/// memory address; we print the value it points to (or Go's `(nil)` form).
pub fn configuration_rows(r: &IpamConfigRecord) -> Vec<(String, String)> {
    let persistence = match &r.kube_virt_vm_address_persistence {
        Some(p) => format!("{p:?}"),
        None => "(*ipam.VMAddressPersistence)(nil)".to_string(),
    };
    vec![
        ("StrictAffinity".into(), r.strict_affinity.to_string()),
        (
            "AutoAllocateBlocks".into(),
            r.auto_allocate_blocks.to_string(),
        ),
        ("MaxBlocksPerHost".into(), r.max_blocks_per_host.to_string()),
        ("KubeVirtVMAddressPersistence".into(), persistence),
        (
            "IPCooldownSeconds".into(),
            r.ip_cooldown_seconds.to_string(),
        ),
    ]
}

pub async fn show_configuration(ctx: &Ctx) -> anyhow::Result<()> {
    let (rec, _) = load_config_record(ctx)
        .await
        .map_err(|e| anyhow!("error: {e}"))?;
    let mut t = GoTable::new(&["PROPERTY", "VALUE"]);
    for (k, v) in configuration_rows(&rec) {
        t.row(vec![k, v]);
    }
    print!("{}", t.render());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pool(name: &str, cidr: &str, bs: u8) -> Pool {
        Pool {
            name: name.into(),
            cidr: cidr.parse().unwrap(),
            block_size: bs,
            disabled: false,
            node_selector: "all()".into(),
            namespace_selector: String::new(),
            allowed_uses: vec!["Workload".into(), "Tunnel".into()],
            assignment_mode: "Automatic".into(),
        }
    }

    fn block(
        cidr: &str,
        affinity: Option<&str>,
        used: &[(usize, Option<&str>)],
    ) -> AllocationBlock {
        let mut b = AllocationBlock::new(cidr.parse().unwrap(), None, 0);
        b.affinity = affinity.map(str::to_string);
        for (ord, node) in used {
            let mut attrs = BTreeMap::new();
            if let Some(n) = node {
                attrs.insert("node".to_string(), n.to_string());
                attrs.insert("pod".to_string(), format!("p{ord}"));
                attrs.insert("namespace".to_string(), "ns".to_string());
            }
            b.attributes.push(model::AllocationAttribute {
                handle_id: Some(format!("h{ord}")),
                active_owner_attrs: attrs,
                ..Default::default()
            });
            b.allocations[*ord] = Some(b.attributes.len() - 1);
            b.unallocated.retain(|o| o != ord);
        }
        b
    }

    #[test]
    fn utilization_counts_pools_blocks_reservations_and_orphans() {
        let pools = [pool("a", "10.0.0.0/24", 26), pool("b", "fd00::/120", 122)];
        let blocks = [
            block(
                "10.0.0.0/26",
                Some("host:n1"),
                &[(0, Some("n1")), (1, Some("n1"))],
            ),
            block("10.0.0.64/26", Some("host:n2"), &[(5, Some("n1"))]),
            block("192.168.0.0/26", None, &[(3, None)]),
            block("fd00::/122", Some("host:n1"), &[(0, Some("n1"))]),
        ];
        // 10.0.0.0/30 reserved (overlaps two allocated addresses), plus an address outside
        // every block.
        let res: Vec<IpNet> = vec![
            "10.0.0.0/30".parse().unwrap(),
            "10.0.0.200/32".parse().unwrap(),
        ];
        let u = utilization(&pools, &blocks, &res);
        assert_eq!(u.len(), 3);
        let a = &u[0];
        assert_eq!((a.capacity, a.in_use, a.reserved), (256, 3, 5));
        // Free: block 1 has 62 unallocated of which 2 reserved -> 60; block 2 63; outside
        // blocks 128 minus one reserved address -> 127.
        assert_eq!(a.available, 60 + 63 + 127);
        assert_eq!(a.blocks.len(), 2);
        assert_eq!(a.blocks[0].reserved, 4);
        assert_eq!(u[1].capacity, 256);
        assert_eq!(u[1].in_use, 1);
        assert_eq!(u[2].cidr, None);
        assert_eq!(u[2].blocks.len(), 1);
        let table = utilization_table(&u, true);
        let want = "\
+----------+----------------+-----------+------------+--------------+------------+
| GROUPING | CIDR           | IPS TOTAL | IPS IN USE | IPS RESERVED | IPS FREE   |
+----------+----------------+-----------+------------+--------------+------------+
| IP Pool  | 10.0.0.0/24    |       256 |     3 (1%) |       5 (2%) |  250 (98%) |
| Block    | 10.0.0.0/26    |        64 |     2 (3%) |       4 (6%) |   60 (94%) |
| Block    | 10.0.0.64/26   |        64 |     1 (2%) |       0 (0%) |   63 (98%) |
| IP Pool  | fd00::/120     |       256 |     1 (0%) |       0 (0%) | 255 (100%) |
| Block    | fd00::/122     |        64 |     1 (2%) |       0 (0%) |   63 (98%) |
| Block    | 192.168.0.0/26 |        64 |     1 (2%) |       0 (0%) |   63 (98%) |
+----------+----------------+-----------+------------+--------------+------------+
";
        assert_eq!(table, want);
        assert!(!utilization_table(&u, false).contains("Block"));
    }

    #[test]
    fn borrowed_classification() {
        let blocks = [
            block(
                "10.0.0.0/26",
                Some("host:n1"),
                &[(0, Some("n1")), (1, Some("n2")), (2, None)],
            ),
            block("10.0.0.64/26", None, &[(0, Some("n3"))]),
        ];
        let (b, unclassified) = borrowed_ips(&blocks);
        assert_eq!(unclassified, 1);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].addr.to_string(), "10.0.0.1");
        assert_eq!(b[0].block_owner, "n1");
        assert_eq!(b[0].borrowing_node, "n2");
        assert_eq!(b[0].allocation_type, "pod");
        assert_eq!(b[0].allocated_to, "ns/p1");
        assert_eq!(b[1].block_owner, "");
    }

    #[test]
    fn configuration_rows_as_go_prints_them() {
        let rec = IpamConfigRecord {
            strict_affinity: true,
            auto_allocate_blocks: true,
            max_blocks_per_host: 4,
            kube_virt_vm_address_persistence: Some("Enabled".into()),
            ip_cooldown_seconds: 0,
        };
        let rows = configuration_rows(&rec);
        assert_eq!(rows[0], ("StrictAffinity".to_string(), "true".to_string()));
        assert_eq!(rows[2].1, "4");
        assert_eq!(rows[3].1, "\"Enabled\"");
        let rec = IpamConfigRecord::default();
        assert_eq!(
            configuration_rows(&rec)[3].1,
            "(*ipam.VMAddressPersistence)(nil)"
        );
    }
}
