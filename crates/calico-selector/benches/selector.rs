//! Selector benchmarks: label-index lookup vs brute-force evaluation over 10k selectors, and
//! parse throughput.
//!
//! Run: `cargo bench -p calico-selector` (add `-- --quick` for a short run).

use std::collections::BTreeMap;
use std::hint::black_box;

use calico_selector::{Selector, SelectorIndex, parse};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// xorshift64*: deterministic selector mix without extra dependencies.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

const ENVS: &[&str] = &["prod", "staging", "dev", "test"];

/// A policy-like mix of 10k selectors:
/// 40% `app == 'app-N'`, 20% `role in {...}`, 20% `has(k) && env == '...'`,
/// 10% namespaced `projectcalico.org/namespace == 'ns-N' && app == ...`,
/// 8% `!has(k) && role == ...`, 2% pure `!has(k)` / `k != 'v'` (always evaluated).
fn selector_mix(n: usize) -> Vec<String> {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    (0..n)
        .map(|_| {
            let pick = rng.below(100);
            match pick {
                0..40 => format!("app == 'app-{}'", rng.below(2000)),
                40..60 => format!(
                    "role in {{'role-{}', 'role-{}', 'role-{}'}}",
                    rng.below(50),
                    rng.below(50),
                    rng.below(50)
                ),
                60..80 => format!(
                    "has(tier-{}) && env == '{}'",
                    rng.below(20),
                    ENVS[rng.below(ENVS.len() as u64) as usize]
                ),
                80..90 => format!(
                    "projectcalico.org/namespace == 'ns-{}' && app == 'app-{}'",
                    rng.below(100),
                    rng.below(2000)
                ),
                90..98 => format!(
                    "!has(quarantine-{}) && role == 'role-{}'",
                    rng.below(10),
                    rng.below(50)
                ),
                98 => format!("!has(quarantine-{})", rng.below(10)),
                _ => format!("app != 'app-{}'", rng.below(2000)),
            }
        })
        .collect()
}

fn endpoint_labels() -> BTreeMap<String, String> {
    [
        ("app", "app-17"),
        ("role", "role-3"),
        ("env", "prod"),
        ("tier-4", "backend"),
        ("version", "v3"),
        ("projectcalico.org/namespace", "ns-5"),
        ("projectcalico.org/orchestrator", "k8s"),
        ("projectcalico.org/serviceaccount", "default"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn bench_matching(c: &mut Criterion) {
    let texts = selector_mix(10_000);
    let mut index = SelectorIndex::new();
    for (i, t) in texts.iter().enumerate() {
        let sel: Selector = match parse(t) {
            Ok(s) => s,
            Err(e) => panic!("benchmark selector {t:?} does not parse: {e}"),
        };
        index.update_selector(i, sel);
    }
    let labels = endpoint_labels();
    let fast = index.matching(&labels).count();
    let slow = index.matching_brute_force(&labels).count();
    assert_eq!(fast, slow, "index and brute force disagree");
    eprintln!(
        "10k selectors: {:?}; endpoint matches {fast} selectors",
        index.stats()
    );

    let mut group = c.benchmark_group("match_10k_selectors");
    group.bench_function("index", |b| {
        b.iter(|| index.matching(black_box(&labels)).count())
    });
    group.bench_function("brute_force", |b| {
        b.iter(|| index.matching_brute_force(black_box(&labels)).count())
    });
    group.finish();

    c.bench_function("index_build_10k", |b| {
        let parsed: Vec<Selector> = texts.iter().filter_map(|t| parse(t).ok()).collect();
        b.iter(|| {
            let mut idx = SelectorIndex::new();
            for (i, s) in parsed.iter().enumerate() {
                idx.update_selector(i, s.clone());
            }
            idx.len()
        })
    });
}

fn bench_parse(c: &mut Criterion) {
    // The selector Calico's own BenchmarkParse uses, plus a typical policy selector.
    let cases = [
        (
            "calico_bench",
            r#"! (a == "b"&&! c != "d") || !(a == "b" && !c != "d")"#,
        ),
        (
            "policy",
            "projectcalico.org/namespace == 'prod' && app in {'web', 'api', 'db'} && !has(quarantine)",
        ),
    ];
    let mut group = c.benchmark_group("parse");
    for (name, text) in cases {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse(black_box(text)).is_ok()));
    }
    group.finish();

    let texts = selector_mix(1000);
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut group = c.benchmark_group("parse_mix_1k");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("parse_and_canonicalise", |b| {
        b.iter(|| texts.iter().filter(|t| parse(black_box(t)).is_ok()).count())
    });
    group.finish();
}

criterion_group!(benches, bench_matching, bench_parse);
criterion_main!(benches);
