//! Compile + render of a large model (10k policies, 200 local endpoints, 2k IP sets), and
//! `diff` after one policy edit, one endpoint change and one IP-set member change.
//!
//! Set `CALICO_NFT_BENCH_DUMP=<dir>` to also write the full script and the diff scripts there
//! (to time `nft -f` on them inside a throwaway network namespace).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use calico_dataplane_model::*;
use calico_nft::{NftConfig, compile, diff, recompile};
use criterion::{Criterion, criterion_group, criterion_main};

const POLICIES: usize = 10_000;

use calico_nft::synthetic::{policy_id as pid, set_id};

fn model() -> DataplaneModel {
    calico_nft::synthetic::model(POLICIES)
}

fn bench(c: &mut Criterion) {
    let cfg = NftConfig::default();
    let base = model();
    let rs = compile(&base, &cfg).unwrap();
    let text = rs.full_replace_script();
    let shape = rs.shape();
    eprintln!(
        "model: {} policies, {} endpoints, {} IP sets -> {} chains, {} rules, {} sets, script {} KiB",
        base.policies.len(),
        base.workload_endpoints.len(),
        base.ip_sets.len(),
        shape.chains.len(),
        shape.rule_count(),
        shape.sets.len(),
        text.len() / 1024
    );

    // One policy's rule edited.
    let mut edited = base.clone();
    if let Some(p) = edited.policies.get_mut(&pid(1234)) {
        p.inbound[0].dst.ports.push(PortRange {
            first: 8443,
            last: 8443,
        });
    }
    let rs_edit = compile(&edited, &cfg).unwrap();
    // One endpoint gets one more policy.
    let mut ep_change = base.clone();
    if let Some(ep) = ep_change.workload_endpoints.values_mut().next() {
        ep.tiers[0].ingress_policies.push(pid(POLICIES - 1));
    }
    let rs_ep = compile(&ep_change, &cfg).unwrap();
    // One IP set gains a member.
    let mut set_change = base.clone();
    if let Some(s) = set_change.ip_sets.get_mut(&set_id(42)) {
        s.members
            .insert(IpSetMember::Address("10.99.99.99".parse().unwrap()));
    }
    let rs_set = compile(&set_change, &cfg).unwrap();
    for (name, d) in [
        ("policy edit", diff(&rs, &rs_edit)),
        ("endpoint change", diff(&rs, &rs_ep)),
        ("ip set member", diff(&rs, &rs_set)),
    ] {
        eprintln!(
            "diff ({name}): {} lines, {} bytes",
            d.lines().count(),
            d.len()
        );
    }
    if let Some(dir) = std::env::var_os("CALICO_NFT_BENCH_DUMP") {
        let dir = std::path::PathBuf::from(dir);
        let files: BTreeMap<&str, String> = [
            ("full.nft", text.clone()),
            ("diff-policy.nft", diff(&rs, &rs_edit)),
            ("diff-endpoint.nft", diff(&rs, &rs_ep)),
            ("diff-set.nft", diff(&rs, &rs_set)),
        ]
        .into_iter()
        .collect();
        for (f, t) in files {
            std::fs::write(dir.join(f), t).unwrap();
        }
    }

    let mut g = c.benchmark_group("nft_10k_policies_200_endpoints");
    g.sample_size(10);
    g.bench_function("compile", |b| {
        b.iter(|| compile(black_box(&base), &cfg).unwrap())
    });
    g.bench_function("compile_and_render", |b| {
        b.iter(|| {
            compile(black_box(&base), &cfg)
                .unwrap()
                .full_replace_script()
        })
    });
    g.bench_function("compile_and_diff_policy_edit", |b| {
        b.iter(|| diff(&rs, &compile(black_box(&edited), &cfg).unwrap()))
    });
    let edit_update = [ModelUpdate::ActivePolicyUpdate {
        id: pid(1234),
        policy: edited.policies[&pid(1234)].clone(),
    }];
    g.bench_function("recompile_and_diff_policy_edit", |b| {
        b.iter(|| {
            let next = recompile(&rs, black_box(&edited), &edit_update, &cfg).unwrap();
            diff(&rs, &next)
        })
    });
    let (ep_id, ep) = ep_change.workload_endpoints.iter().next().unwrap();
    let ep_update = [ModelUpdate::WorkloadEndpointUpdate {
        id: ep_id.clone(),
        endpoint: ep.clone(),
    }];
    g.bench_function("recompile_and_diff_endpoint_change", |b| {
        b.iter(|| {
            let next = recompile(&rs, black_box(&ep_change), &ep_update, &cfg).unwrap();
            diff(&rs, &next)
        })
    });
    let set_update = [ModelUpdate::IpSetDelta {
        id: set_id(42),
        added: vec![IpSetMember::Address("10.99.99.99".parse().unwrap())],
        removed: vec![],
    }];
    g.bench_function("recompile_and_diff_ip_set_member", |b| {
        b.iter(|| {
            let next = recompile(&rs, black_box(&set_change), &set_update, &cfg).unwrap();
            diff(&rs, &next)
        })
    });
    // The incremental result is the full one.
    assert!(recompile(&rs, &edited, &edit_update, &cfg).unwrap() == rs_edit);
    g.bench_function("diff_policy_edit", |b| {
        b.iter(|| diff(black_box(&rs), black_box(&rs_edit)))
    });
    g.bench_function("diff_endpoint_change", |b| {
        b.iter(|| diff(black_box(&rs), black_box(&rs_ep)))
    });
    g.bench_function("diff_ip_set_member", |b| {
        b.iter(|| diff(black_box(&rs), black_box(&rs_set)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
