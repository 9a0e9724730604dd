//! Record/replay golden tests: `tests/golden/*.yaml` re-encode the scenarios of Felix's
//! `felix/calc/states_for_test.go` (v1 test data translated to the v3 resources that produce
//! it). Each file is a list of steps (resources applied, then deleted) followed by the
//! expected state after that step: the active IP sets with their members (named by selector,
//! so the IDs are computed exactly as Felix does), active policies and profiles, and every
//! local endpoint's tier lists per stage. Every step also checks the model contract (replay of
//! the flushed updates == model, references resolve), and the final state must equal a fresh
//! graph fed only the final resources.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use calico_api::Resource;
use calico_calc::{CalcGraph, DataplaneModel, ResourceKey};
use calico_dataplane_model::{TierDefaultAction, TierInfo};
use calico_policy_rules::{named_port_ip_set_id, selector_ip_set_id};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Golden {
    /// Which Felix states this file re-encodes.
    #[allow(dead_code)]
    source: String,
    node: String,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    name: String,
    #[serde(default)]
    apply: Vec<serde_json::Value>,
    #[serde(default)]
    delete: Vec<KeyDoc>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDoc {
    kind: String,
    #[serde(default)]
    namespace: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expect {
    #[serde(default)]
    ip_sets: Vec<SetDoc>,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
    #[serde(default)]
    endpoints: BTreeMap<String, EndpointDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SetDoc {
    selector: String,
    named_port: Option<String>,
    protocol: Option<String>,
    #[serde(default)]
    members: Vec<String>,
}

#[derive(Deserialize, Default, PartialEq, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EndpointDoc {
    #[serde(default)]
    tiers: Vec<TierDoc>,
    #[serde(default)]
    untracked: Vec<TierDoc>,
    #[serde(default)]
    pre_dnat: Vec<TierDoc>,
    #[serde(default)]
    forward: Vec<TierDoc>,
}

#[derive(Deserialize, PartialEq, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TierDoc {
    name: String,
    #[serde(default)]
    ingress: Vec<String>,
    #[serde(default)]
    egress: Vec<String>,
    /// `Deny` / `Pass`; checked only when given.
    default_action: Option<String>,
}

fn set_id(s: &SetDoc, file: &str) -> String {
    let sel = calico_selector::parse(&s.selector)
        .unwrap_or_else(|e| panic!("{file}: selector {:?}: {e}", s.selector));
    match (&s.named_port, s.protocol.as_deref()) {
        (None, None) => selector_ip_set_id(&sel),
        (Some(port), proto) => {
            let p = match proto {
                Some("tcp") => 6,
                Some("udp") => 17,
                Some("sctp") => 132,
                None | Some("any") => calico_policy_rules::NAMED_PORT_PROTOCOL_ANY,
                Some(other) => panic!("{file}: unknown protocol {other}"),
            };
            named_port_ip_set_id(&sel, p, port)
        }
        (None, Some(_)) => panic!("{file}: protocol without namedPort"),
    }
}

fn tier_docs(tiers: &[TierInfo], with_action: &[TierDoc]) -> Vec<TierDoc> {
    tiers
        .iter()
        .enumerate()
        .map(|(i, t)| TierDoc {
            name: t.name.clone(),
            ingress: t.ingress_policies.iter().map(|p| p.to_string()).collect(),
            egress: t.egress_policies.iter().map(|p| p.to_string()).collect(),
            default_action: with_action
                .get(i)
                .and_then(|d| d.default_action.as_ref())
                .map(|_| match t.default_action {
                    TierDefaultAction::Deny => "Deny".to_string(),
                    TierDefaultAction::Pass => "Pass".to_string(),
                }),
        })
        .collect()
}

fn check_expect(file: &str, step: &Step, m: &DataplaneModel) {
    let ctx = format!("{file}, step {:?}", step.name);
    let e = &step.expect;
    // IP sets: exactly the expected ones, each with exactly its members.
    let mut want: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for s in &e.ip_sets {
        let what = format!("{} {:?} {:?}", s.selector, s.named_port, s.protocol);
        want.insert(set_id(s, file), (what, s.members.iter().cloned().collect()));
    }
    let have: BTreeSet<&String> = m.ip_sets.keys().collect();
    let want_ids: BTreeSet<&String> = want.keys().collect();
    assert_eq!(have, want_ids, "{ctx}: active IP sets (expected {want:?})");
    for (id, (what, members)) in &want {
        let got: BTreeSet<String> = m.ip_sets[id]
            .members
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(&got, members, "{ctx}: members of {what}");
    }
    let policies: BTreeSet<String> = m.policies.keys().map(|p| p.to_string()).collect();
    let want_pols: BTreeSet<String> = e.policies.iter().cloned().collect();
    assert_eq!(policies, want_pols, "{ctx}: active policies");
    let profiles: BTreeSet<&String> = m.profiles.keys().collect();
    let want_profiles: BTreeSet<&String> = e.profiles.iter().collect();
    assert_eq!(profiles, want_profiles, "{ctx}: active profiles");
    let mut endpoints: BTreeMap<String, EndpointDoc> = BTreeMap::new();
    let empty = EndpointDoc::default();
    for (id, ep) in &m.workload_endpoints {
        let w = e.endpoints.get(&id.to_string()).unwrap_or(&empty);
        endpoints.insert(
            id.to_string(),
            EndpointDoc {
                tiers: tier_docs(&ep.tiers, &w.tiers),
                ..EndpointDoc::default()
            },
        );
    }
    for (name, ep) in &m.host_endpoints {
        let w = e.endpoints.get(name).unwrap_or(&empty);
        endpoints.insert(
            name.clone(),
            EndpointDoc {
                tiers: tier_docs(&ep.tiers, &w.tiers),
                untracked: tier_docs(&ep.untracked_tiers, &w.untracked),
                pre_dnat: tier_docs(&ep.pre_dnat_tiers, &w.pre_dnat),
                forward: tier_docs(&ep.forward_tiers, &w.forward),
            },
        );
    }
    assert_eq!(endpoints, e.endpoints, "{ctx}: local endpoints");
}

fn run(path: &Path) {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let golden: Golden = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut g = CalcGraph::new(&golden.node);
    let mut replay = DataplaneModel::default();
    let mut current: BTreeMap<ResourceKey, Resource> = BTreeMap::new();
    for step in &golden.steps {
        for doc in &step.apply {
            let r = Resource::from_json_value(doc.clone())
                .unwrap_or_else(|e| panic!("{file}, step {:?}: {e}", step.name));
            let key = ResourceKey::of(&r);
            g.on_update(key.clone(), Some(r.clone()))
                .unwrap_or_else(|e| panic!("{file}, step {:?}: {e}", step.name));
            current.insert(key, r);
        }
        for k in &step.delete {
            let key = ResourceKey::new(&k.kind, &k.namespace, &k.name);
            g.on_update(key.clone(), None).unwrap();
            current.remove(&key);
        }
        common::flush_checked(&mut g, &mut replay);
        check_expect(&file, step, g.model());
    }
    let mut fresh = CalcGraph::new(&golden.node);
    for (k, r) in current {
        fresh.on_update(k, Some(r)).unwrap();
    }
    assert_eq!(
        fresh.model(),
        g.model(),
        "{file}: final state differs from a fresh build"
    );
}

#[test]
fn golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 6,
        "golden files missing in {}",
        dir.display()
    );
    for f in files {
        run(&f);
    }
}
