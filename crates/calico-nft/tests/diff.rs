//! `diff(a, b)` applied to a table holding `a` gives a table holding `b`: checked with a
//! textual simulator of nft for random model pairs, and against the kernel (inside a
//! throwaway network namespace) for a sample of pairs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use calico_nft::{NftConfig, TableShape, compile, diff};
use common::{in_netns, models, sim};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn simulate(script: &str) -> BTreeMap<String, sim::Table> {
    let mut tables = BTreeMap::new();
    sim::run(&mut tables, script).unwrap_or_else(|e| panic!("{e}\nscript:\n{script}"));
    tables
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

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
        prop_assert_eq!(shape, rb.shape());
        prop_assert_eq!(diff(&ra, &ra), "");
        prop_assert_eq!(diff(&rb, &rb), "");
    }
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
