#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the test failing.

//! Calico's own selector test tables (re-encoded as JSON under tests/data/), run against this
//! crate. Each table checks its case count so a truncated data file cannot pass silently.

use std::collections::{BTreeMap, BTreeSet};

use calico_selector::tokenizer::{TokenKind, tokenize};
use calico_selector::{LabelRestriction, LabelRestrictions, normalise, parse, validate};
use serde::Deserialize;

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    #[derive(Deserialize)]
    struct File<T> {
        cases: Vec<T>,
    }
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let file: File<T> = serde_json::from_str(&text).unwrap();
    file.cases
}

/// `{a*N}` expands to N copies of `a` (the Go table builds those inputs with strings.Repeat).
fn expand(s: &str) -> String {
    let mut out = s.to_owned();
    for n in [512, 513] {
        out = out.replace(&format!("{{a*{n}}}"), &"a".repeat(n));
    }
    out
}

fn token_repr(kind: &TokenKind<'_>) -> String {
    match kind {
        TokenKind::Label(l) => format!("Label({l})"),
        TokenKind::StringLiteral(s) => format!("String({s})"),
        TokenKind::Has(l) => format!("Has({l})"),
        other => format!("{other:?}"),
    }
}

#[derive(Deserialize)]
struct TokenCase {
    input: String,
    tokens: Option<Vec<String>>,
}

#[test]
fn tokenizer_table() {
    let cases: Vec<TokenCase> = load("tokenizer.json");
    // Calico's tokenTests has 49 entries (the feature inventory rounds it to 47).
    assert_eq!(cases.len(), 49);
    for case in cases {
        let input = expand(&case.input);
        let got = tokenize(&input);
        match case.tokens {
            None => assert!(got.is_err(), "{input:?} should be rejected, got {got:?}"),
            Some(expected) => {
                let expected: Vec<String> = expected.iter().map(|t| expand(t)).collect();
                let got: Vec<String> = got
                    .unwrap_or_else(|e| panic!("{input:?} rejected: {e}"))
                    .iter()
                    .map(|t| token_repr(&t.kind))
                    .collect();
                assert_eq!(got, expected, "tokens of {input:?}");
            }
        }
    }
}

#[derive(Deserialize)]
struct SelectorCase {
    sel: String,
    matches: Vec<BTreeMap<String, String>>,
    non_matches: Vec<BTreeMap<String, String>>,
}

#[test]
fn parser_match_table() {
    let cases: Vec<SelectorCase> = load("selectors.json");
    assert_eq!(cases.len(), 58);
    for case in cases {
        let sel = parse(&case.sel).unwrap_or_else(|e| panic!("{:?}: {e}", case.sel));
        validate(&case.sel).unwrap();
        let reparsed = parse(sel.as_str()).unwrap_or_else(|e| panic!("{sel}: {e}"));
        for s in [&sel, &reparsed] {
            for labels in &case.matches {
                assert!(
                    s.evaluate(labels),
                    "{:?} ({s}) should match {labels:?}",
                    case.sel
                );
            }
            for labels in &case.non_matches {
                assert!(
                    !s.evaluate(labels),
                    "{:?} ({s}) should not match {labels:?}",
                    case.sel
                );
            }
        }
        assert_eq!(sel.unique_id(), sel.unique_id());
        assert_eq!(sel.unique_id(), reparsed.unique_id(), "{:?}", case.sel);
    }
}

#[test]
fn bad_selector_table() {
    let cases: Vec<String> = load("bad_selectors.json");
    assert_eq!(cases.len(), 26);
    for sel in cases {
        assert!(parse(&sel).is_err(), "parse should reject {sel:?}");
        assert!(validate(&sel).is_err(), "validate should reject {sel:?}");
    }
}

#[derive(Deserialize)]
struct CanonCase {
    input: String,
    canonical: String,
    uid: Option<String>,
}

#[test]
fn canonicalisation_table() {
    let cases: Vec<CanonCase> = load("canonical.json");
    assert_eq!(cases.len(), 17);
    assert_eq!(cases.iter().filter(|c| c.uid.is_some()).count(), 5);
    for case in cases {
        let sel = parse(&case.input).unwrap();
        assert_eq!(
            sel.to_string(),
            case.canonical,
            "canonical of {:?}",
            case.input
        );
        assert_eq!(normalise(&case.input).unwrap(), case.canonical);
        let round = parse(&case.canonical).unwrap();
        assert_eq!(round.to_string(), case.canonical);
        assert_eq!(round.unique_id(), sel.unique_id());
        assert_eq!(round, sel);
        if let Some(uid) = case.uid {
            assert_eq!(sel.unique_id(), uid, "uid of {:?}", case.input);
        }
    }
}

#[derive(Deserialize)]
struct JsonRestriction {
    must_be_present: bool,
    must_be_absent: bool,
    must_have_one_of_values: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RestrictionCase {
    sel: String,
    restrictions: BTreeMap<String, JsonRestriction>,
}

#[test]
fn label_restriction_table() {
    let cases: Vec<RestrictionCase> = load("label_restrictions.json");
    assert_eq!(cases.len(), 32);
    for case in cases {
        let expected: LabelRestrictions = case
            .restrictions
            .into_iter()
            .map(|(k, r)| {
                (
                    k,
                    LabelRestriction {
                        must_be_present: r.must_be_present,
                        must_be_absent: r.must_be_absent,
                        must_have_one_of_values: r
                            .must_have_one_of_values
                            .map(|v| v.into_iter().collect::<BTreeSet<_>>()),
                    },
                )
            })
            .collect();
        let sel = parse(&case.sel).unwrap();
        assert_eq!(
            sel.label_restrictions(),
            expected,
            "restrictions of {:?}",
            case.sel
        );
        assert_eq!(
            sel.label_restrictions(),
            expected,
            "second call, {:?}",
            case.sel
        );
        if !case.sel.is_empty() {
            // An extra "all() &&" must not change anything.
            let wrapped = format!("all() && ({})", case.sel);
            assert_eq!(
                parse(&wrapped).unwrap().label_restrictions(),
                expected,
                "{wrapped:?}"
            );
        }
    }
}

#[derive(Deserialize)]
struct VisitorCase {
    description: String,
    input: String,
    output: String,
}

#[test]
fn visitor_table() {
    let cases: Vec<VisitorCase> = load("visitor.json");
    assert_eq!(cases.len(), 11);
    for case in cases {
        let sel = parse(&case.input).unwrap();
        validate(&case.input).unwrap();
        let visited = sel.with_label_prefix("visited/").unwrap();
        assert_eq!(visited.to_string(), case.output, "{}", case.description);
        // The rewritten selector is itself valid and canonical.
        assert_eq!(parse(&case.output).unwrap(), visited);
    }
}
