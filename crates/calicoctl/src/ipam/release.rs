//! `calicoctl ipam release` (`ipam_command.go` and `commands/ipam/release.go`): one address by
//! `--ip`, or everything the `ipam check` reports given with `--from-report` agree is leaked,
//! behind Calico's safety checks.

use std::net::IpAddr;

use anyhow::{anyhow, bail};
use calico_api::clusterinfo::ClusterInformation;
use calico_datastore::DatastoreError;
use calico_ipam::model::{self, AffinityOwner};
use calico_ipam::{IpamError, ReleaseOptions};
use ipnet::IpNet;

use super::Ctx;
use super::report::{CheckReport, HandleInfo, NodeAffinity, merge_reports};

/// `release --ip`.
pub async fn release_ip(ctx: &Ctx, ip: IpAddr) -> anyhow::Result<()> {
    let unallocated = ctx
        .ipam
        .release_ips(&[ReleaseOptions::address(ip)])
        .await
        .map_err(|e| anyhow!("error: {e}"))?;
    if !unallocated.is_empty() {
        bail!("IP address {ip} is not assigned");
    }
    println!("Successfully released IP address {ip}");
    Ok(())
}

/// `ReleaseFromReports`. Refused (whatever `--force` says) when a report is from another
/// cluster or every report predates the last ClusterInformation change (lock the datastore,
/// then check, then release); refused without `--force` when a report is from another
/// calicoctl version or the datastore is not locked.
pub async fn release_from_reports(
    ctx: &Ctx,
    force: bool,
    files: &[String],
    version: &str,
) -> anyhow::Result<()> {
    let ci: ClusterInformation = ctx.client.get_as("", "default").await?;
    let mut found_current = false;
    let mut reports = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| anyhow!("open {f}: {e}"))?;
        let r = CheckReport::parse(&text)?;
        if r.cluster_guid != ci.spec.cluster_guid {
            // Not overridable: releasing another cluster's addresses would be a disaster.
            bail!(
                "cluster does not match the provided report ({f}): mismatched cluster GUID. Refusing to release"
            );
        }
        if r.version != version {
            if !force {
                bail!(
                    "the provided report ({f}) was produced using a different version ({}) of calicoctl. Refusing to release",
                    r.version
                );
            }
            println!(
                "WARNING: Report was produced using a different version of calicoctl. Ignoring due to --force option"
            );
        }
        if r.cluster_info_revision == ci.metadata.resource_version {
            found_current = true;
        }
        reports.push(r);
    }
    if !found_current {
        bail!(
            "the provided reports are all stale - at least one should be up-to-date. Please generate a new report while the data store is locked and try again"
        );
    }
    if ci.spec.datastore_ready != Some(false) {
        if !force {
            bail!("data store is not locked. Either lock the data store, or re-run with --force");
        }
        println!("WARNING: Data store is not locked. Ignoring due to --force option");
    }

    let merged = merge_reports(&reports);
    if merged.ips.is_empty() {
        println!("Report didn't contain any leaked IPs to clean up.");
    } else {
        release_ips(ctx, &merged.ips).await?;
    }
    if merged.handles.is_empty() {
        println!("Report didn't contain any handles to clean up.");
    } else {
        release_handles(ctx, merged.handles.values()).await;
    }
    if !merged.affinities.is_empty() {
        release_affinities(ctx, &merged.affinities).await?;
    }
    Ok(())
}

/// `releaseIPs`. Each address is released only if it still has the handle and sequence number
/// the report saw; one that changed since (reused by a new workload) is refused and reported,
/// and the others are still released.
async fn release_ips(
    ctx: &Ctx,
    ips: &std::collections::BTreeMap<String, (String, Option<u64>)>,
) -> anyhow::Result<()> {
    let mut opts: Vec<ReleaseOptions> = Vec::new();
    for (ip, (handle, seq)) in ips {
        let address: IpAddr = ip
            .parse()
            .map_err(|_| anyhow!("the report lists {ip:?}, which is not an IP address"))?;
        opts.push(ReleaseOptions {
            address,
            handle: Some(handle.clone()).filter(|h| !h.is_empty()),
            sequence_number: *seq,
        });
    }
    println!("Releasing {} old IPs...", opts.len());
    let total = opts.len();
    let mut refused = 0;
    let unallocated = loop {
        // The allocator refuses a whole release when one address is stale; drop that address
        // and release the rest.
        let e = match ctx.ipam.release_ips(&opts).await {
            Ok(u) => break u,
            Err(e) => e,
        };
        println!(
            "An error occurred while releasing some IPs: {e}.  Problems are often caused by an out-of-date IPAM report.  Try regenerating the IPAM report and retry."
        );
        let stale = match &e {
            IpamError::BadSequenceNumber { ip, .. } | IpamError::BadHandle { ip, .. } => *ip,
            _ => return Ok(()),
        };
        refused += 1;
        opts.retain(|o| o.address != stale);
        if opts.is_empty() {
            break Vec::new();
        }
    };
    println!(
        "Released {} IPs successfully",
        total - refused - unallocated.len()
    );
    if !unallocated.is_empty() {
        println!(
            "{} addresses marked as leaked in the report had already been cleaned up.",
            unallocated.len()
        );
    }
    Ok(())
}

/// `releaseHandles`: each handle is deleted only if it is still at the revision the report
/// saw (one that changed has been reused).
async fn release_handles<'a>(ctx: &Ctx, handles: impl ExactSizeIterator<Item = &'a HandleInfo>) {
    println!("Deleting {} handles...", handles.len());
    println!("Key: '.' = Deleted OK; 'x' = skip, handle missing/changed.");
    let (mut released, mut skipped, mut errors) = (0, 0, 0);
    let ds = ctx.client.datastore();
    for h in handles {
        let key = model::handle_key(&h.id);
        let result = match h.revision.parse::<i64>() {
            Ok(rev) => ds.delete(&key, Some(rev)).await.map(|_| ()),
            Err(_) => Err(DatastoreError::InvalidRequest(format!(
                "revision {:?} of handle {} is not a number",
                h.revision, h.id
            ))),
        };
        match result {
            Ok(()) => {
                released += 1;
                print!(".");
            }
            Err(DatastoreError::NotFound { .. } | DatastoreError::Conflict { .. }) => {
                skipped += 1;
                print!("x");
            }
            Err(e) => {
                errors += 1;
                print!("\nDeleting handle {} failed: {e}.\n", h.id);
            }
        }
    }
    println!();
    println!("Released {released} handles; {skipped} skipped; {errors} errors.");
}

/// Our addition: releases the affinities of nodes that still do not exist, for blocks that
/// are empty by now (a block still holding addresses is skipped, never emptied here).
async fn release_affinities(ctx: &Ctx, affs: &[NodeAffinity]) -> anyhow::Result<()> {
    println!(
        "Releasing {} block affinities of deleted nodes...",
        affs.len()
    );
    println!("Key: '.' = Released OK; 'x' = skip, node exists again or block not empty/changed.");
    let (mut released, mut skipped, mut errors) = (0, 0, 0);
    for a in affs {
        let cidr: IpNet = a
            .block
            .parse()
            .map_err(|_| anyhow!("the report lists block {:?}, which is not a CIDR", a.block))?;
        match ctx.client.get("Node", "", &a.node).await {
            Ok(_) => {
                skipped += 1;
                print!("x");
                continue;
            }
            Err(e) if e.is_does_not_exist() => {}
            Err(e) => {
                errors += 1;
                print!("\nChecking node {} failed: {e}.\n", a.node);
                continue;
            }
        }
        match ctx
            .ipam
            .release_block_affinity(&AffinityOwner::host(&a.node), &cidr, true)
            .await
        {
            Ok(()) => {
                released += 1;
                print!(".");
            }
            Err(
                IpamError::BlockNotEmpty { .. }
                | IpamError::NotOwner { .. }
                | IpamError::BlockNotFound(_),
            ) => {
                skipped += 1;
                print!("x");
            }
            Err(e) => {
                errors += 1;
                print!(
                    "\nReleasing block {} of node {} failed: {e}.\n",
                    a.block, a.node
                );
            }
        }
    }
    println!();
    println!("Released {released} block affinities; {skipped} skipped; {errors} errors.");
    Ok(())
}
