//! Golden tests: each `tests/golden/<name>.yaml` model compiles to exactly
//! `tests/golden/<name>.nft` (regenerate with `UPDATE_GOLDEN=1`; a model with `shards: N`
//! compiles to the sharded layout, all its tables one after another), nft accepts every
//! golden output (`nft -c -f`), and once loaded, the kernel's listing of each table has
//! exactly the shape `Ruleset::shape` predicts. nft runs only inside a fresh network namespace
//! (`unshare --net`), never in the host's; these tests need root and fail without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calico_nft::{PolicyTables, TableShape};
use common::{golden_models, in_netns};

fn compiled() -> Vec<(String, PolicyTables)> {
    golden_models()
        .into_iter()
        .map(|(path, g)| {
            let t = PolicyTables::compile(&g.model(), &g.config())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), t)
        })
        .collect()
}

#[test]
fn golden_outputs_match() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (path, rs) in compiled() {
        let want_path = path.replace(".yaml", ".nft");
        let got = rs.render();
        if update {
            std::fs::write(&want_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&want_path)
            .unwrap_or_else(|e| panic!("{want_path}: {e} (run with UPDATE_GOLDEN=1)"));
        if got != want {
            failures.push(format!("{want_path} differs; got:\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn compile_is_deterministic() {
    for (path, g) in golden_models() {
        let a = PolicyTables::compile(&g.model(), &g.config()).unwrap();
        let b = PolicyTables::compile(&g.model(), &g.config()).unwrap();
        assert_eq!(a.render(), b.render(), "{}", path.display());
    }
}

#[test]
fn nft_accepts_every_golden_output() {
    for (path, rs) in compiled() {
        let (ok, _, err) = in_netns("nft -c -f -", &rs.full_replace_scripts().concat());
        assert!(ok, "{path}: nft -c rejected the script:\n{err}");
    }
}

#[test]
fn kernel_listing_has_the_predicted_shape() {
    for (path, rs) in compiled() {
        let (ok, out, err) = in_netns(
            "nft -f - && nft -j list ruleset",
            &rs.full_replace_scripts().concat(),
        );
        assert!(ok, "{path}: {err}");
        for (table, shape) in rs.shapes() {
            let listed = TableShape::from_nft_json(&out, &table).unwrap();
            assert_eq!(listed, shape, "{path}: table {table}");
        }
    }
}
