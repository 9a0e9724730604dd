#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the test failing.

//! The parser must never panic, whatever the input (the same check as fuzz/selector_parse,
//! run in plain `cargo test` so CI covers it without cargo-fuzz), and its nesting bound must
//! hold at the edges.

use std::collections::BTreeMap;

use calico_selector::{MAX_NESTING, SelectorError, parse, validate};

/// xorshift64*: deterministic, dependency-free pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Fragments that make the parser go deep rather than fail on the first byte.
const PIECES: &[&str] = &[
    "a",
    "b",
    "app",
    "x.io/y",
    " ",
    "\t",
    "\n",
    "==",
    "!=",
    "!",
    "&&",
    "||",
    "&",
    "|",
    "=",
    "(",
    ")",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "'v'",
    "\"w\"",
    "in",
    " in ",
    "not",
    " not in ",
    "notin",
    " contains ",
    " starts with ",
    "startswith",
    " ends  with ",
    "has(",
    "has(a)",
    "all()",
    "all( )",
    "global()",
    "global(",
    "é",
    "\u{0}",
    "%",
];

/// Checks one input: no panic; if it parses, its canonical form parses too, the second
/// canonicalisation is a fixed point, and evaluation is unchanged.
fn check(input: &str, probes: &[BTreeMap<String, String>]) -> bool {
    let parsed = parse(input);
    assert_eq!(parsed.is_ok(), validate(input).is_ok(), "{input:?}");
    let Ok(sel) = parsed else { return false };
    let once = parse(sel.as_str()).unwrap_or_else(|e| panic!("{input:?} -> {sel}: {e}"));
    let twice = parse(once.as_str()).unwrap();
    assert_eq!(once, twice, "{input:?}");
    for l in probes {
        assert_eq!(sel.evaluate(l), once.evaluate(l), "{input:?} on {l:?}");
    }
    true
}

#[test]
fn random_inputs_never_panic() {
    let probes: Vec<BTreeMap<String, String>> = vec![
        BTreeMap::new(),
        BTreeMap::from([("a".into(), "v".into())]),
        BTreeMap::from([("a".into(), "w".into()), ("b".into(), "v".into())]),
        BTreeMap::from([("app".into(), "".into()), ("x.io/y".into(), "w".into())]),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for i in 0..6000 {
        let input = if i % 3 == 0 {
            // Raw bytes, made UTF-8 the way a fuzzer's harness would.
            let bytes: Vec<u8> = (0..rng.below(48)).map(|_| rng.next() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            (0..rng.below(24))
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect()
        };
        if check(&input, &probes) {
            accepted += 1;
        }
    }
    // The generator must reach the success path too, or the round-trip checks prove nothing.
    assert!(accepted > 100, "only {accepted} inputs parsed");
}

#[test]
fn nesting_limit_is_exact() {
    let nested = |n: usize| format!("{}a == 'b'{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&nested(MAX_NESTING)).is_ok());
    assert!(matches!(
        parse(&nested(MAX_NESTING + 1)),
        Err(SelectorError::TooDeep { pos, .. }) if pos == MAX_NESTING
    ));
    // `!(` chains nest too.
    let nots = |n: usize| format!("{}has(a){}", "!(".repeat(n), ")".repeat(n));
    let sel = parse(&nots(MAX_NESTING)).unwrap();
    // has(a) is false on no labels; an odd number of negations makes it true.
    let empty = BTreeMap::<String, String>::new();
    assert_eq!(sel.evaluate(&empty), MAX_NESTING % 2 == 1);
    assert!(parse(&nots(MAX_NESTING + 1)).is_err());
    // Hostile input far beyond the limit fails cleanly instead of overflowing the stack.
    assert!(parse(&"(".repeat(1_000_000)).is_err());
    assert!(parse(&"!".repeat(1_000_000)).is_err());
    assert!(parse(&format!("{}has(a)", "!".repeat(1_000_001))).is_ok());
}

#[test]
fn deepest_groups_round_trip() {
    // a && (a && (a && ...)): MAX_NESTING - 1 parentheses give MAX_NESTING nested && groups,
    // whose canonical form has MAX_NESTING parentheses and must parse again.
    let depth = MAX_NESTING - 1;
    let mut s = String::new();
    for _ in 0..depth {
        s.push_str("has(a) && (");
    }
    s.push_str("has(a) && has(b)");
    s.push_str(&")".repeat(depth));
    let sel = parse(&s).unwrap();
    let again = parse(sel.as_str()).unwrap();
    assert_eq!(sel, again);
    // One more level: the input has MAX_NESTING parentheses but the canonical form would need
    // MAX_NESTING + 1, so it is rejected up front.
    let deeper = format!("has(a) && ({s})");
    assert!(matches!(parse(&deeper), Err(SelectorError::TooDeep { .. })));
}
