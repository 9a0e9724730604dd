//! `rule_code` compiles every rule exactly as nft 1.0.6 does: for the golden models, the
//! synthetic benchmark model and random models, the expressions and anonymous sets printed by
//! `nft --debug=netlink -f` (run in a fresh network namespace) equal ours, rule by rule.
//! These tests need root (`unshare --net`) and fail without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calico_nft::{NftConfig, PolicyTables, Ruleset, anon_set_debug, compile, rule_code, synthetic};
use common::{golden_models, in_netns};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// The rule-related lines of nft's debug output: anonymous sets (declaration and elements)
/// and each rule's header and expressions.
fn rule_lines(debug: &str) -> Vec<String> {
    let lines: Vec<&str> = debug.lines().collect();
    let mut out = Vec::new();
    let mut in_anon = false;
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("__set%d ") {
            in_anon = true;
            out.push(l.trim_end().to_string());
        } else if l.starts_with("\telement ") {
            if in_anon {
                out.push(l.trim_end().to_string());
            }
        } else if l.starts_with("  [ ") {
            out.push(l.trim_end().to_string());
        } else if l.starts_with("inet ") && lines.get(i + 1).is_some_and(|n| n.starts_with("  [ "))
        {
            in_anon = false;
            out.push(l.trim_end().to_string());
        } else {
            in_anon = false;
        }
    }
    out
}

fn expected_lines(rs: &Ruleset) -> Vec<String> {
    let mut text = String::new();
    for chain in rs.chain_names() {
        for rule in rs.chain_rules(chain).unwrap() {
            let code = rule_code(rule).unwrap_or_else(|e| panic!("{e}"));
            for set in &code.anon_sets {
                text.push_str(&anon_set_debug(set, rs.table()));
                text.push('\n');
            }
            text.push_str(&format!("inet {} {chain}\n", rs.table()));
            for e in &code.exprs {
                text.push_str(&format!("  {e}\n"));
            }
        }
    }
    rule_lines(&text)
}

fn check(name: &str, rs: &Ruleset) {
    let (ok, out, err) = in_netns("nft --debug=netlink -f -", &rs.full_replace_script());
    assert!(ok, "{name}: nft rejected the script: {err}");
    let got = rule_lines(&out);
    let want = expected_lines(rs);
    let rules = rs
        .chain_names()
        .map(|c| rs.chain_rules(c).unwrap().len())
        .sum::<usize>();
    assert!(
        got.iter().filter(|l| l.starts_with("inet ")).count() == rules && rules > 0,
        "{name}: nft printed {} rules, the ruleset has {rules}",
        got.iter().filter(|l| l.starts_with("inet ")).count()
    );
    if got != want {
        let at = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let from = at.saturating_sub(8);
        panic!(
            "{name}: first difference at line {at}\nnft:\n{}\nours:\n{}",
            got[from..(at + 8).min(got.len())].join("\n"),
            want[from..(at + 8).min(want.len())].join("\n")
        );
    }
}

#[test]
fn golden_rules_compile_as_nft_compiles_them() {
    for (path, g) in golden_models() {
        let rs = compile(&g.model(), &g.config()).unwrap();
        check(&path.display().to_string(), &rs);
    }
}

#[test]
fn synthetic_benchmark_rules_compile_as_nft_compiles_them() {
    let rs = compile(&synthetic::model(50), &NftConfig::default()).unwrap();
    check("synthetic model (50 policies)", &rs);
}

/// The sharded layout (main, global and shard tables, with their own base chains), with and
/// without IPv6 support, on random models (their endpoints are in three namespaces).
#[test]
fn sharded_tables_compile_as_nft_compiles_them() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[9; 32]),
    );
    let strategy = common::models::model();
    let (mut shard_tables, mut global_tables) = (0, 0);
    for case in 0..32 {
        let model = strategy.new_tree(&mut runner).unwrap().current();
        let cfg = NftConfig {
            shards: 4,
            ipv6: case % 2 == 0,
            ..NftConfig::default()
        };
        let Ok(tables) = PolicyTables::compile(&model, &cfg) else {
            continue;
        };
        for rs in tables.tables() {
            match rs.table() {
                "calico" => {}
                "calico-global" => global_tables += 1,
                _ => shard_tables += 1,
            }
            if rs
                .chain_names()
                .any(|c| !rs.chain_rules(c).unwrap().is_empty())
            {
                check(&format!("random model {case}: {}", rs.table()), rs);
            }
        }
    }
    assert!(shard_tables >= 6, "only {shard_tables} shard tables");
    assert!(global_tables >= 3, "only {global_tables} global tables");
}

#[test]
fn random_model_rules_compile_as_nft_compiles_them() {
    let cases: u32 = std::env::var("RULE_CODE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        // A fixed seed: a failure reproduces.
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = common::models::model();
    let mut checked = 0;
    let mut anon_sets = 0;
    for case in 0..cases {
        let model = strategy.new_tree(&mut runner).unwrap().current();
        let Ok(rs) = compile(&model, &NftConfig::default()) else {
            continue;
        };
        check(&format!("random model {case}"), &rs);
        checked += 1;
        anon_sets += rs
            .chain_names()
            .flat_map(|c| rs.chain_rules(c).unwrap())
            .map(|r| rule_code(r).unwrap().anon_sets.len())
            .sum::<usize>();
    }
    eprintln!("{checked} random models, {anon_sets} anonymous sets");
    assert!(
        checked * 2 >= cases as usize,
        "only {checked} of {cases} models compiled"
    );
    assert!(
        anon_sets > 0,
        "the random models never used an anonymous set"
    );
}

#[test]
fn unknown_statements_are_refused_with_the_token() {
    for (rule, token) in [
        ("meta skuid 0 accept", "skuid"),
        ("counter accept", "counter"),
        ("ip saddr 10.0.0.1/33 accept", "10.0.0.1/33"),
        ("th dport 90-80 accept", "90-80"),
        ("iifname \"cali1", "unterminated"),
        ("accept drop", "after the verdict"),
    ] {
        let e = rule_code(rule).unwrap_err().to_string();
        assert!(e.contains(token), "{rule}: {e}");
        assert!(e.contains(rule), "{rule}: {e}");
    }
}
