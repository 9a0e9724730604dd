//! `recompile(compile(a), b, updates a→b)` equals `compile(b)` for random model pairs, and
//! errors exactly when `compile(b)` does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use calico_dataplane_model::{DataplaneModel, ModelUpdate};
use calico_nft::{NftConfig, compile, diff, recompile};
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
