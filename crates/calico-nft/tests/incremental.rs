//! `recompile(compile(a), b, updates a→b)` equals `compile(b)` for random model pairs, and
//! errors exactly when `compile(b)` does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use calico_dataplane_model::{DataplaneModel, ModelUpdate};
use calico_nft::{NftConfig, PolicyTables, compile, diff, recompile};
use common::models;
use proptest::prelude::*;

/// Updates that turn `a` into `b`, one per changed object, in Felix's event-sequencer order
/// (sets and policies before endpoints; removals of endpoints before policies before sets).
fn updates(a: &DataplaneModel, b: &DataplaneModel) -> Vec<ModelUpdate> {
    fn changed<'a, K: Ord + Clone, V: PartialEq + Clone>(
        a: &'a BTreeMap<K, V>,
        b: &'a BTreeMap<K, V>,
    ) -> (Vec<(K, V)>, Vec<K>) {
        let upd = b
            .iter()
            .filter(|(k, v)| a.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let rem = a.keys().filter(|k| !b.contains_key(*k)).cloned().collect();
        (upd, rem)
    }
    let mut out = Vec::new();
    let (su, sr) = changed(&a.ip_sets, &b.ip_sets);
    let (pu, pr) = changed(&a.policies, &b.policies);
    let (fu, fr) = changed(&a.profiles, &b.profiles);
    let (wu, wr) = changed(&a.workload_endpoints, &b.workload_endpoints);
    let (hu, hr) = changed(&a.host_endpoints, &b.host_endpoints);
    out.extend(
        su.into_iter()
            .map(|(id, set)| ModelUpdate::IpSetUpdate { id, set }),
    );
    out.extend(
        pu.into_iter()
            .map(|(id, policy)| ModelUpdate::ActivePolicyUpdate { id, policy }),
    );
    out.extend(
        fu.into_iter()
            .map(|(name, profile)| ModelUpdate::ActiveProfileUpdate { name, profile }),
    );
    out.extend(
        wr.into_iter()
            .map(|id| ModelUpdate::WorkloadEndpointRemove { id }),
    );
    out.extend(
        hr.into_iter()
            .map(|name| ModelUpdate::HostEndpointRemove { name }),
    );
    out.extend(
        wu.into_iter()
            .map(|(id, endpoint)| ModelUpdate::WorkloadEndpointUpdate { id, endpoint }),
    );
    out.extend(
        hu.into_iter()
            .map(|(name, endpoint)| ModelUpdate::HostEndpointUpdate { name, endpoint }),
    );
    out.extend(
        pr.into_iter()
            .map(|id| ModelUpdate::ActivePolicyRemove { id }),
    );
    out.extend(
        fr.into_iter()
            .map(|name| ModelUpdate::ActiveProfileRemove { name }),
    );
    out.extend(sr.into_iter().map(|id| ModelUpdate::IpSetRemove { id }));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn recompile_equals_compile(a in models::model(), b in models::model()) {
        let cfg = NftConfig::default();
        let ups = updates(&a, &b);
        let mut replay = a.clone();
        for u in &ups {
            replay.apply(u).unwrap();
        }
        prop_assert_eq!(&replay, &b);
        let ra = compile(&a, &cfg).unwrap();
        let full = compile(&b, &cfg).unwrap();
        let inc = recompile(&ra, &b, &ups, &cfg).unwrap();
        prop_assert_eq!(diff(&full, &inc), "");
        prop_assert!(inc == full);
        // Updating one thing at a time gives the same result.
        let mut rs = ra;
        let mut m = a;
        for u in &ups {
            m.apply(u).unwrap();
            // Intermediate models may be inconsistent (e.g. a policy referencing a set whose
            // update comes later is not possible in this order, but an endpoint removed
            // after its policy is); then both must fail.
            match (recompile(&rs, &m, std::slice::from_ref(u), &cfg), compile(&m, &cfg)) {
                (Ok(next), Ok(want)) => {
                    prop_assert!(next == want, "after {:?}", u);
                    rs = next;
                }
                (Err(_), Err(_)) => {
                    rs = compile(&m, &cfg).unwrap_or(rs);
                }
                (got, want) => prop_assert!(false, "after {:?}: recompile {:?}, compile {:?}", u, got.err(), want.err()),
            }
        }
    }
}

#[test]
fn removed_set_still_referenced_is_an_error() {
    use calico_dataplane_model::*;
    let cfg = NftConfig::default();
    let mut m = DataplaneModel::default();
    m.ip_sets.insert("s:x".into(), IpSet::default());
    let mut r = Rule::any(RuleAction::Allow);
    r.src.ip_sets.push("s:x".into());
    let id = PolicyId {
        tier: "default".into(),
        kind: PolicyKind::GlobalNetworkPolicy,
        namespace: String::new(),
        name: "p".into(),
    };
    m.policies.insert(
        id,
        Policy {
            inbound: vec![r],
            ..Policy::default()
        },
    );
    let rs = compile(&m, &cfg).unwrap();
    let u = ModelUpdate::IpSetRemove { id: "s:x".into() };
    m.apply(&u).unwrap();
    let err = recompile(&rs, &m, &[u], &cfg).unwrap_err();
    assert_eq!(err, compile(&m, &cfg).unwrap_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The sharded layout: `PolicyTables::recompile` equals `PolicyTables::compile`, batch
    /// and one update at a time, and the one transaction between two layouts
    /// (`PolicyTables::plan` when no table comes or goes) turns the old tables into the new.
    #[test]
    fn sharded_recompile_equals_compile(
        a in models::model(),
        b in models::model(),
        shards in 1u16..5,
        ipv6 in any::<bool>(),
    ) {
        let cfg = NftConfig { shards, ipv6, ..NftConfig::default() };
        let ups = updates(&a, &b);
        let ta = PolicyTables::compile(&a, &cfg).unwrap();
        let full = PolicyTables::compile(&b, &cfg).unwrap();
        let inc = ta.recompile(&b, &ups, &cfg).unwrap();
        prop_assert!(inc == full, "batch recompile differs:\n{}\nvs\n{}", inc.render(), full.render());
        prop_assert_eq!(inc.script(&full), "");
        let mut t = ta;
        let mut m = a;
        for u in &ups {
            m.apply(u).unwrap();
            match (t.recompile(&m, std::slice::from_ref(u), &cfg), PolicyTables::compile(&m, &cfg)) {
                (Ok(next), Ok(want)) => {
                    prop_assert!(next == want, "after {:?}:\n{}\nvs\n{}", u, next.render(), want.render());
                    t = next;
                }
                (Err(_), Err(_)) => {
                    t = PolicyTables::compile(&m, &cfg).unwrap_or(t);
                }
                (got, want) => prop_assert!(false, "after {:?}: recompile {:?}, compile {:?}", u, got.err(), want.err()),
            }
        }
    }

    /// Every workload endpoint's chains are in exactly one table, its shard's; with the
    /// global table's group chain for its global prefix in front (if it has one), they are
    /// the rules of the one-table layout: the group chain is the whole chain's head up to
    /// the end of the prefix's tiers, then its group mark and the `GLOBAL_ACCEPT` hand-over;
    /// the shard chain checks both, then is the whole chain without the prefix's tiers. Every chain they jump to has the same
    /// rules as in the one-table layout. The main table has the interface as a `return`
    /// entry; every policy, profile and set a table's rules use is declared in that table.
    #[test]
    fn shards_hold_what_their_endpoints_use(m in models::model(), shards in 1u16..5) {
        let whole = compile(&m, &NftConfig::default()).unwrap();
        let cfg = NftConfig { shards, ..NftConfig::default() };
        let t = PolicyTables::compile(&m, &cfg).unwrap();
        let hand_over = "meta mark & 0x00010000 != 0 meta mark set meta mark | 0x00100000";
        for (id, ep) in &m.workload_endpoints {
            let home = t.workload_table(id);
            prop_assert_eq!(home.table(), calico_nft::shard_table("calico", calico_nft::shard_of(id, shards)));
            for (prefix, map) in [("fw-", "from-wl"), ("tw-", "to-wl")] {
                let chain = format!("{prefix}{}", ep.interface_name);
                let want = whole.chain_rules(&chain).unwrap();
                let got = home.chain_rules(&chain).unwrap();
                let group = t.global().and_then(|g| {
                    g.map_entries(map)
                        .unwrap()
                        .into_iter()
                        .find(|(iface, _)| *iface == ep.interface_name)
                        .map(|(_, verdict)| verdict)
                });
                let mut composed: Vec<String> = Vec::new();
                match &group {
                    None => composed.extend(got.iter().cloned()),
                    Some(verdict) => {
                        let g = t.global().unwrap();
                        let name = verdict.strip_prefix("goto ").unwrap();
                        let rules = g.chain_rules(name).unwrap();
                        // The group chain ends by setting its group's mark, then the accept
                        // hand-over; the shard chain starts by checking both.
                        let n = rules.len();
                        prop_assert!(n >= 2);
                        prop_assert_eq!(rules[n - 1].as_str(), hand_over);
                        let group = rules[n - 2]
                            .strip_prefix("meta mark set meta mark | 0x")
                            .and_then(|v| u32::from_str_radix(v, 16).ok())
                            .unwrap();
                        prop_assert!(group & 0xffe0_0000 == group && group != 0, "{:x}", group);
                        prop_assert_eq!(
                            &got[..2],
                            &[
                                format!("meta mark & 0xfff00000 == 0x{:08x} return", group | 0x0010_0000),
                                format!("meta mark & 0xffe00000 != 0x{group:08x} drop"),
                            ]
                        );
                        let got = &got[2..];
                        // Both go on with the mark clearing and (egress) the encap drops.
                        let head = if prefix == "fw-" { 3 } else { 1 };
                        prop_assert_eq!(&rules[..head], &got[..head]);
                        composed.extend(rules[..n - 2].iter().cloned());
                        composed.extend(got[head..].iter().cloned());
                        for rule in rules {
                            if let Some(target) = rule.split("jump ").nth(1) {
                                prop_assert_eq!(g.chain_rules(target), whole.chain_rules(target), "{}", target);
                            }
                        }
                    }
                }
                prop_assert_eq!(composed.as_slice(), want, "{} (group {:?})", chain, group);
                for rule in got {
                    if let Some(target) = rule.split("jump ").nth(1) {
                        prop_assert_eq!(home.chain_rules(target), whole.chain_rules(target), "{}", target);
                    }
                }
                for other in t.tables().filter(|r| r.table() != home.table()) {
                    prop_assert!(other.chain_rules(&chain).is_none());
                }
            }
            let entries = t.main().map_entries("from-wl").unwrap();
            prop_assert!(entries.contains(&(ep.interface_name.clone(), "return".to_string())));
        }
        for r in t.tables().skip(1) {
            for chain in r.chain_names() {
                for rule in r.chain_rules(chain).unwrap_or_default() {
                    for word in rule.split_whitespace() {
                        if let Some(set) = word.strip_prefix('@') {
                            prop_assert!(r.set_names().any(|s| s == set) || r.map_entries(set).is_some(), "{} uses {}", r.table(), set);
                        }
                    }
                }
            }
        }
    }
}
