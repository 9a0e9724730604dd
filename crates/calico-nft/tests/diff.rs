//! `diff(a, b)` applied to a table holding `a` gives a table holding `b`: checked with a
//! textual simulator of nft for random model pairs, and against the kernel (inside a
//! throwaway network namespace) for a sample of pairs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use calico_nft::bytecode::TableOp;
use calico_nft::{
    NftConfig, Ruleset, RulesetCounts, TableShape, compile, diff, diff_ops, diff_plan,
    render_elements, rule_code,
};
use common::{in_netns, models, sim};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn simulate(script: &str) -> BTreeMap<String, sim::Table> {
    let mut tables = BTreeMap::new();
    sim::run(&mut tables, script).unwrap_or_else(|e| panic!("{e}\nscript:\n{script}"));
    tables
}

/// A plan as an nft script, one command per op (the simulator checks what it does). The
/// text of the k-th rule added to a chain is the k-th rule of that chain in `new`; the op's
/// expressions must be that rule's.
fn render_plan(plan: &[TableOp], new: &Ruleset) -> String {
    let mut out = String::new();
    let mut next_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for op in plan {
        match op {
            TableOp::AddSet { name, kind } => {
                out.push_str(&format!(
                    "add set inet calico {name} {{ {} }}\n",
                    kind.spec()
                ));
            }
            TableOp::Element(e) => {
                out.push_str(&render_elements("calico", std::slice::from_ref(e)))
            }
            TableOp::AddChain { name } => out.push_str(&format!("add chain inet calico {name}\n")),
            TableOp::FlushChain { name } => {
                out.push_str(&format!("flush chain inet calico {name}\n"));
            }
            TableOp::AddRule { chain, rule } => {
                let k = next_rule.entry(chain.as_str()).or_insert(0);
                let text = &new
                    .chain_rules(chain)
                    .expect("a rule of a chain of the new ruleset")[*k];
                *k += 1;
                assert_eq!(&rule_code(text).unwrap(), rule, "{chain}: {text}");
                out.push_str(&format!("add rule inet calico {chain} {text}\n"));
            }
            TableOp::DeleteChain { name } => {
                out.push_str(&format!("delete chain inet calico {name}\n"));
            }
            TableOp::DeleteSet { name } => {
                out.push_str(&format!("delete set inet calico {name}\n"))
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `diff_plan` is `diff` as data: rendered back to nft commands, it turns `a` into `b`;
    /// a plan is refused only for what it cannot express (maps, base chains, declarations).
    #[test]
    fn diff_plan_turns_a_into_b(a in models::model(), b in models::model()) {
        let cfg = NftConfig::default();
        let ra = compile(&a, &cfg).unwrap();
        let rb = compile(&b, &cfg).unwrap();
        let d = diff(&ra, &rb);
        match diff_plan(&ra, &rb) {
            Ok(plan) => {
                prop_assert_eq!(plan.is_empty(), d.is_empty());
                let script = render_plan(&plan, &rb);
                let mut tables = simulate(&ra.full_replace_script());
                sim::run(&mut tables, &script).unwrap_or_else(|e| panic!("{e}\nplan:\n{script}"));
                let want = simulate(&rb.full_replace_script());
                prop_assert_eq!(&tables, &want, "plan:\n{}", script);
            }
            Err(e) => {
                let why = e.to_string();
                prop_assert!(
                    why.contains("map ") || why.contains("base chain") || why.contains("declaration"),
                    "refused: {}\ndiff:\n{}", why, d
                );
            }
        }
        prop_assert_eq!(diff_plan(&rb, &rb).unwrap(), vec![]);
    }

    #[test]
    fn diff_turns_a_into_b(a in models::model(), b in models::model()) {
        let cfg = NftConfig::default();
        let ra = compile(&a, &cfg).unwrap();
        let rb = compile(&b, &cfg).unwrap();
        let d = diff(&ra, &rb);
        let mut tables = simulate(&ra.full_replace_script());
        sim::run(&mut tables, &d).unwrap_or_else(|e| panic!("{e}\ndiff:\n{d}"));
        let want = simulate(&rb.full_replace_script());
        prop_assert_eq!(&tables, &want, "diff:\n{}", d);
        // Shapes agree too (what a driver compares).
        let t = &tables["calico"];
        let shape = TableShape {
            chains: t.chains.iter().map(|(k, v)| (k.clone(), v.1.len())).collect(),
            sets: t.sets.iter().map(|(k, v)| (k.clone(), v.1.len())).collect(),
            maps: t.maps.iter().map(|(k, v)| (k.clone(), v.1.len())).collect(),
        };
        prop_assert_eq!(&shape, &rb.shape());
        prop_assert_eq!(
            rb.counts(),
            RulesetCounts {
                chains: shape.chains.len(),
                rules: shape.rule_count(),
                sets: shape.sets.len(),
                maps: shape.maps.len(),
            }
        );
        prop_assert_eq!(diff(&ra, &ra), "");
        prop_assert_eq!(diff(&rb, &rb), "");
    }

    /// `diff_ops`: its elements and script, rendered as one transaction, do what `diff`
    /// does; the elements alone, when the script is empty, too; and the elements are exactly
    /// the element commands `diff` writes for sets and maps both rulesets hold.
    #[test]
    fn diff_ops_is_diff_split(a in models::model(), b in models::model()) {
        let cfg = NftConfig::default();
        let ra = compile(&a, &cfg).unwrap();
        let rb = compile(&b, &cfg).unwrap();
        let change = diff_ops(&ra, &rb);
        let d = diff(&ra, &rb);
        prop_assert_eq!(change.is_empty(), d.is_empty());
        prop_assert_eq!(change.table.as_str(), "calico");
        let rendered = change.render();
        let mut tables = simulate(&ra.full_replace_script());
        sim::run(&mut tables, &rendered).unwrap_or_else(|e| panic!("{e}\nrendered:\n{rendered}"));
        let want = simulate(&rb.full_replace_script());
        prop_assert_eq!(&tables, &want, "rendered:\n{}", rendered);
        if change.elements_only() {
            // Applied alone, the elements are the whole change, written as diff writes them.
            prop_assert_eq!(render_elements("calico", &change.elements), d.clone());
        }
        for op in &change.elements {
            prop_assert!(
                ra.set_names().any(|s| s == op.set) || ra.map_entries(&op.set).is_some(),
                "{} is not in the old ruleset", op.set
            );
            let verb = if op.add { "add" } else { "delete" };
            prop_assert!(
                d.contains(&format!("{verb} element inet calico {} {{ ", op.set)),
                "diff has no {} of {}", verb, op.set
            );
            let in_script = format!("element inet calico {} {{", op.set);
            prop_assert!(!change.script.contains(&in_script), "{}", in_script);
        }
    }
}

/// A membership change of each kind of set (hash, interval, address-port) and a map entry
/// change are elements only; anything else goes to the script.
#[test]
fn membership_changes_are_elements_only() {
    use calico_dataplane_model::*;
    use std::collections::BTreeSet;
    let cfg = NftConfig::default();
    let model = |addrs: &[&str], nets: &[&str], ports: &[u16], iface: &str| {
        let mut m = DataplaneModel::default();
        m.ip_sets.insert(
            "s:a".into(),
            IpSet {
                kind: Some(IpSetKind::Addresses),
                members: addrs
                    .iter()
                    .map(|a| IpSetMember::Address(a.parse().unwrap()))
                    .collect(),
            },
        );
        m.ip_sets.insert(
            "n:n".into(),
            IpSet {
                kind: Some(IpSetKind::Nets),
                members: nets
                    .iter()
                    .map(|a| IpSetMember::Net(a.parse().unwrap()))
                    .collect(),
            },
        );
        m.ip_sets.insert(
            "s:p".into(),
            IpSet {
                kind: Some(IpSetKind::AddressPorts),
                members: ports
                    .iter()
                    .map(|p| IpSetMember::AddressPort {
                        addr: "10.1.0.1".parse().unwrap(),
                        protocol: 6,
                        port: *p,
                    })
                    .collect::<BTreeSet<_>>(),
            },
        );
        m.workload_endpoints.insert(
            WorkloadEndpointId {
                orchestrator_id: "k8s".into(),
                workload_id: "ns/pod".into(),
                endpoint_id: "eth0".into(),
            },
            WorkloadEndpoint {
                interface_name: iface.into(),
                ..Default::default()
            },
        );
        compile(&m, &cfg).unwrap()
    };
    let a = model(&["10.0.0.1"], &["10.2.0.0/16"], &[80], "cali1");
    let b = model(
        &["10.0.0.2", "fd00::2"],
        &["10.2.0.0/16", "10.3.0.0/24"],
        &[80, 443],
        "cali1",
    );
    let change = diff_ops(&a, &b);
    assert!(change.elements_only(), "{}", change.script);
    let mut got: Vec<(String, bool, String)> = change
        .elements
        .iter()
        .map(|o| (o.set.clone(), o.add, o.element.clone()))
        .collect();
    got.sort();
    let op = |s: &str, add, e: &str| (s.to_string(), add, e.to_string());
    assert_eq!(
        got,
        [
            op("a4-s/a", false, "10.0.0.1"),
            op("a4-s/a", true, "10.0.0.2"),
            op("a6-s/a", true, "fd00::2"),
            op("n4-n/n", true, "10.3.0.0/24"),
            op("p4-s/p", true, "10.1.0.1 . tcp . 443"),
        ]
    );
    // A new endpoint on another interface: new chains (script) and map entries (elements,
    // added after the script creates their target chains).
    let c = model(&["10.0.0.1"], &["10.2.0.0/16"], &[80], "cali2");
    let change = diff_ops(&a, &c);
    assert!(
        change.script.contains("add chain inet calico tw-cali2"),
        "{}",
        change.script
    );
    assert!(!change.script.contains("element"), "{}", change.script);
    let rendered = change.render();
    let add_chain = rendered.find("add chain inet calico tw-cali2").unwrap();
    let add_entry = rendered.find("\"cali2\" : goto tw-cali2").unwrap();
    let del_entry = rendered
        .find("delete element inet calico to-wl { \"cali1\" }")
        .unwrap();
    let del_chain = rendered.find("delete chain inet calico tw-cali1").unwrap();
    assert!(add_chain < add_entry && del_entry < del_chain, "{rendered}");
    assert!(diff_ops(&a, &a).is_empty());
}

/// The same property against the kernel: full `a`, then `diff(a, b)`, listed back, has
/// `b`'s shape; and nft accepts each step (so the command order is one nft accepts).
#[test]
fn diff_applies_in_the_kernel() {
    let cfg = NftConfig::default();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (models::model(), models::model());
    for i in 0..25 {
        let (a, b) = strategy.new_tree(&mut runner).unwrap().current();
        let ra = compile(&a, &cfg).unwrap();
        let rb = compile(&b, &cfg).unwrap();
        let d = diff(&ra, &rb);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.nft"), ra.full_replace_script()).unwrap();
        std::fs::write(dir.path().join("d.nft"), &d).unwrap();
        let script = format!(
            "nft -f {0}/a.nft && nft -f {0}/d.nft && nft -j list table inet calico",
            dir.path().display()
        );
        let (ok, out, err) = in_netns(&script, "");
        assert!(ok, "pair {i}: {err}\ndiff:\n{d}");
        let listed = TableShape::from_nft_json(&out, "calico").unwrap();
        assert_eq!(listed, rb.shape(), "pair {i}, diff:\n{d}");
    }
}

/// `diff_ops(a, b).render()` is one script nft accepts in the kernel and that leaves `b`.
#[test]
fn diff_ops_render_applies_in_the_kernel() {
    let cfg = NftConfig::default();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (models::model(), models::model());
    for i in 0..25 {
        let (a, b) = strategy.new_tree(&mut runner).unwrap().current();
        let ra = compile(&a, &cfg).unwrap();
        let rb = compile(&b, &cfg).unwrap();
        let d = diff_ops(&ra, &rb).render();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.nft"), ra.full_replace_script()).unwrap();
        std::fs::write(dir.path().join("d.nft"), &d).unwrap();
        let script = format!(
            "nft -f {0}/a.nft && nft -f {0}/d.nft && nft -j list table inet calico",
            dir.path().display()
        );
        let (ok, out, err) = in_netns(&script, "");
        assert!(ok, "pair {i}: {err}\nrendered:\n{d}");
        let listed = TableShape::from_nft_json(&out, "calico").unwrap();
        assert_eq!(listed, rb.shape(), "pair {i}, rendered:\n{d}");
    }
}

/// Most random changes have a plan (the proptest above would prove little otherwise): only
/// host-endpoint changes touch base chains or maps that the plan refuses.
#[test]
fn most_random_changes_have_a_plan() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut ok, mut total, mut rules) = (0, 0, 0);
    for _ in 0..200 {
        let a = models::model().new_tree(&mut runner).unwrap().current();
        let b = models::model().new_tree(&mut runner).unwrap().current();
        let cfg = NftConfig::default();
        let (ra, rb) = (compile(&a, &cfg).unwrap(), compile(&b, &cfg).unwrap());
        total += 1;
        if let Ok(plan) = diff_plan(&ra, &rb) {
            ok += 1;
            rules += plan
                .iter()
                .filter(|o| matches!(o, TableOp::AddRule { .. }))
                .count();
        }
    }
    eprintln!("{ok} of {total} random changes have a plan ({rules} rules added)");
    assert!(ok * 2 >= total && rules > 0, "{ok} of {total}");
}

#[test]
fn a_renamed_table_has_no_plan() {
    let m = calico_nft::synthetic::model(2);
    let a = compile(&m, &NftConfig::default()).unwrap();
    let b = compile(
        &m,
        &NftConfig {
            table: "other".into(),
            ..NftConfig::default()
        },
    )
    .unwrap();
    let e = diff_plan(&a, &b).unwrap_err().to_string();
    assert!(e.contains("calico -> other"), "{e}");
}
