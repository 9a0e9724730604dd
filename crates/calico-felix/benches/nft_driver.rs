//! The nftables driver on a real kernel, inside a throw-away network namespace (root only;
//! without root it prints a note and measures nothing): a full replace of a large table
//! (10k policies, 200 local endpoints, 2k IP sets), the diffs of one change, the listing a
//! drift check reads back, and a whole `PolicyManager` step (diff + apply) for one change.
//!
//! `CALICO_NFT_BENCH_POLICIES` scales the model (default 10000).
//!
//! Figures on the 2-core dev VM (nft 1.0.6; 20 418 chains, 92 845 rules, 4 002 sets, 7 MiB
//! script): full replace 6.0 s; one set element 106 ms and one policy's chain 157 ms per
//! transaction (apply + undo pairs: 213 / 313 ms) — almost all of it nft building its cache
//! of the table before it sends anything; `nft -j list table` + shape 13.2 s (nft decoding
//! 92k rules; the text listing takes 10.8 s too), which is why drift checks skip the listing
//! while the ruleset generation shows no foreign write.
//!
//! Element changes over netlink (`NftDriver::apply_elements`: no nft process, no cache, one
//! kept netfilter socket), same VM, 10k policies, machine shared with other builds: one
//! IP-set member added then removed 0.43 ms per pair, ~0.21 ms per change (nft: 152 ms per
//! pair); a dispatch map entry pair 39 ms (nft: 183 ms): for verdict elements the kernel
//! re-validates the jump graph of the table, which grows with it. `PolicyManager::sync` of one
//! membership change (target recompiled from the base as the agent does, so objects are
//! shared) 8.9 ms, of which `diff_ops` 0.28 ms and the benchmark's own clone of the target
//! 1.4 ms; the rest is userspace bookkeeping over the 24k-object ruleset (dropping the
//! previous one, counts). (Before the socket was kept, creating a NETLINK_NETFILTER socket
//! per call cost ~4 ms each, three per sync.)

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the failure report

use std::hint::black_box;

use calico_dataplane_model::*;
use calico_felix::policy::{NftDriver, NftMetrics, PolicyDataplane, PolicyManager, SyncAction};
use calico_netlink::testing::{TestNetns, require_root};
use calico_nft::{Element, ElementOp, NftConfig, Ruleset, Verdict, compile, render_elements};
use criterion::{Criterion, criterion_group, criterion_main};

use calico_nft::synthetic::{ENDPOINTS, model, policy_id as pid, set_id};

fn compiled(m: &DataplaneModel) -> Ruleset {
    compile(m, &NftConfig::default()).unwrap()
}

fn bench(c: &mut Criterion) {
    if !require_root() {
        return;
    }
    let policies: usize = std::env::var("CALICO_NFT_BENCH_POLICIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let base_model = model(policies);
    let base = compiled(&base_model);
    let mut edited_model = base_model.clone();
    if let Some(p) = edited_model.policies.get_mut(&pid(policies / 2)) {
        p.inbound[0].dst.ports.push(PortRange {
            first: 8443,
            last: 8443,
        });
    }
    let edited = compiled(&edited_model);
    let mut grown_model = base_model.clone();
    if let Some(s) = grown_model.ip_sets.get_mut(&set_id(42)) {
        s.members
            .insert(IpSetMember::Address("10.99.99.99".parse().unwrap()));
    }
    // As the agent builds it: recompiled from `base` for the one update, so every object the
    // update does not touch is shared (diff skips those by pointer).
    let grown_update = ModelUpdate::IpSetDelta {
        id: set_id(42),
        added: vec![IpSetMember::Address("10.99.99.99".parse().unwrap())],
        removed: vec![],
    };
    let grown =
        calico_nft::recompile(&base, &grown_model, &[grown_update], &NftConfig::default()).unwrap();
    assert!(grown == compiled(&grown_model));
    let shape = base.shape();
    eprintln!(
        "table: {} chains, {} rules, {} sets, {} maps; full script {} KiB",
        shape.chains.len(),
        shape.rule_count(),
        shape.sets.len(),
        shape.maps.len(),
        base.full_replace_script().len() / 1024
    );

    let ns = TestNetns::new("felix-nftbench").unwrap();
    let mut driver = NftDriver::new("calico", Some(ns.path()));
    let full = base.full_replace_script();
    driver.apply(&full).unwrap();
    assert_eq!(driver.list_table("calico").unwrap(), Some(shape));

    let mut g = c.benchmark_group(format!(
        "nft_driver_{policies}_policies_{ENDPOINTS}_endpoints"
    ));
    g.sample_size(10);
    g.bench_function("full_replace", |b| {
        b.iter(|| driver.apply(black_box(&full)).unwrap())
    });
    // Each diff is applied then undone, so every iteration starts from the base table.
    for (name, target) in [("policy_edit", &edited), ("ip_set_member", &grown)] {
        let forth = calico_nft::diff(&base, target);
        let back = calico_nft::diff(target, &base);
        g.bench_function(format!("diff_{name}_apply_and_undo"), |b| {
            b.iter(|| {
                driver.apply(black_box(&forth)).unwrap();
                driver.apply(black_box(&back)).unwrap();
            })
        });
    }
    // The same one-element change as one nfnetlink batch (no nft process, no cache load).
    let forth = calico_nft::diff_ops(&base, &grown);
    let back = calico_nft::diff_ops(&grown, &base);
    assert!(forth.elements_only() && back.elements_only());
    g.bench_function("netlink_ip_set_member_apply_and_undo", |b| {
        b.iter(|| {
            driver
                .apply_elements("calico", black_box(&forth.elements))
                .unwrap();
            driver
                .apply_elements("calico", black_box(&back.elements))
                .unwrap();
        })
    });
    // A dispatch map entry (a new interface jumping to an existing endpoint chain): over
    // netlink and through nft. A verdict element makes the kernel re-validate the jump graph.
    let chain = base
        .chain_names()
        .find(|c| c.starts_with("tw-"))
        .unwrap()
        .to_string();
    let entry = |add| ElementOp {
        set: "to-wl".into(),
        add,
        element: format!("\"calibench\" : goto {chain}"),
        value: Element::IfaceVerdict {
            iface: "calibench".into(),
            verdict: Verdict::Goto(chain.clone()),
        },
    };
    let (add, del) = ([entry(true)], [entry(false)]);
    g.bench_function("netlink_map_entry_apply_and_undo", |b| {
        b.iter(|| {
            driver.apply_elements("calico", black_box(&add)).unwrap();
            driver.apply_elements("calico", black_box(&del)).unwrap();
        })
    });
    let (add_nft, del_nft) = (
        render_elements("calico", &add),
        render_elements("calico", &del),
    );
    g.bench_function("nft_map_entry_apply_and_undo", |b| {
        b.iter(|| {
            driver.apply(black_box(&add_nft)).unwrap();
            driver.apply(black_box(&del_nft)).unwrap();
        })
    });
    assert_eq!(driver.list_table("calico").unwrap(), Some(base.shape()));
    g.bench_function("list_table_shape", |b| {
        b.iter(|| driver.list_table("calico").unwrap())
    });
    // What the agent pays per change: diff + one transaction (ruleset compile excluded); a
    // membership change takes the netlink element path.
    let mut manager = PolicyManager::new(driver.clone(), NftMetrics::default());
    manager.set_target(base.clone());
    manager.sync().unwrap();
    let mut flip = false;
    g.bench_function("manager_sync_ip_set_member", |b| {
        b.iter(|| {
            flip = !flip;
            manager.set_target(if flip { grown.clone() } else { base.clone() });
            assert_eq!(manager.sync().unwrap(), SyncAction::Diff);
        })
    });
    // The userspace parts of that step, for the record: the structured diff, and the clone
    // of the target the benchmark itself makes per iteration.
    g.bench_function("cpu_diff_ops_ip_set_member", |b| {
        b.iter(|| calico_nft::diff_ops(black_box(&base), black_box(&grown)))
    });
    g.bench_function("cpu_clone_ruleset", |b| {
        b.iter(|| black_box(&grown).clone())
    });
    g.bench_function("manager_check_drift_clean", |b| {
        b.iter(|| assert!(!manager.check_drift().unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
