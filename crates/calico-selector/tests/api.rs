#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the test failing.

//! Public API behaviour beyond Calico's tables: error kinds and positions, AST construction
//! checks, composition, equality, normalisation corner cases.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use calico_selector::{
    CompareOp, Node, Selector, SelectorError, normalise, normalise_or_keep, parse, validate,
};

#[test]
fn errors_say_what_and_where() {
    let cases: &[(&str, usize, &str)] = &[
        ("b == b", 5, "expected a quoted string"),
        ("'b1' == b", 0, "expected a label"),
        ("b", 1, "expected an operator"),
        ("a b", 2, "after label \"a\""),
        ("!", 1, "found end of input"),
        ("foo in \"\"", 7, "set literal"),
        ("foo in {\"\", ||", 12, "'}'"),
        ("(a == \"foo\"", 11, "expected ')'"),
        (")", 0, "found ')'"),
        ("a == 'b')", 8, "after the end of the selector"),
        ("%", 0, "'%'"),
        ("\"FOO'", 0, "unterminated string"),
        ("has(foo) &&", 11, "end of input"),
        ("a == 'x' & b", 9, "\"&&\""),
    ];
    for (input, pos, text) in cases {
        let err = parse(input).unwrap_err();
        assert_eq!(err.position(), *pos, "{input:?}: {err}");
        assert!(err.to_string().contains(text), "{input:?}: {err}");
        assert_eq!(validate(input).unwrap_err(), err);
    }
}

#[test]
fn calico_double_negation_quirk() {
    // Calico prints Not(Not(x)) as "!!x", which re-parses as x. We keep that byte-for-byte,
    // since unique IDs (Felix IP set names) are hashes of this text.
    let sel = parse("!(!has(a))").unwrap();
    assert_eq!(sel.to_string(), "!!has(a)");
    assert_eq!(normalise(sel.as_str()).unwrap(), "has(a)");
    let l = BTreeMap::from([("a".to_string(), "1".to_string())]);
    assert!(sel.evaluate(&l));
}

#[test]
fn normalise_trims_like_go_trimspace() {
    assert_eq!(normalise("  a == 'b'\n").unwrap(), "a == \"b\"");
    assert!(
        parse("a == 'b'\n").is_err(),
        "the parser itself rejects newlines"
    );
    assert_eq!(normalise("").unwrap(), "all()");
    assert_eq!(normalise_or_keep(" a == \n"), "a ==");
    assert_eq!(normalise_or_keep("has( x )"), "has(x)");
}

#[test]
fn from_node_rejects_what_cannot_round_trip() {
    let bad = [
        Node::Has {
            label: "bad label".into(),
        },
        Node::Has { label: "".into() },
        Node::Compare {
            label: "a".into(),
            op: CompareOp::Eq,
            value: "both ' and \"".into(),
        },
        Node::And(vec![Node::All]),
        Node::Or(vec![]),
    ];
    for node in bad {
        assert!(
            matches!(
                Selector::from_node(node.clone()),
                Err(SelectorError::InvalidAst { .. })
            ),
            "{node:?}"
        );
    }
    let ok = Node::And(vec![
        Node::In {
            label: "a".into(),
            values: BTreeSet::from(["y".into(), "x".into()]),
        },
        Node::Not(Box::new(Node::Global)),
    ]);
    let sel = Selector::from_node(ok.clone()).unwrap();
    assert_eq!(sel.to_string(), "(a in {\"x\", \"y\"} && !global())");
    assert_eq!(parse(sel.as_str()).unwrap().root(), &ok);
}

#[test]
fn prefixing_validates_the_result() {
    let sel = parse("k == 'v' || has(x)").unwrap();
    assert_eq!(
        sel.with_label_prefix("pcns.").unwrap().to_string(),
        "(pcns.k == \"v\" || has(pcns.x))"
    );
    assert!(sel.with_label_prefix("bad prefix ").is_err());
    let long = "p".repeat(512);
    assert!(sel.with_label_prefix(&long).is_err());
    // all() and global() have no labels; prefixing leaves them alone.
    assert_eq!(
        parse("all()").unwrap().with_label_prefix("pcns.").unwrap(),
        Selector::all()
    );
}

#[test]
fn combinators_and_constants() {
    let empty: HashMap<String, String> = HashMap::new();
    assert!(Selector::all().evaluate(&empty));
    assert!(!Selector::no_match().evaluate(&empty));
    assert_eq!(Selector::no_match().to_string(), "!all()");
    let a = parse("a == 'x'").unwrap();
    let b = parse("!has(b)").unwrap();
    assert_eq!(a.or(&b).to_string(), "(a == \"x\" || !has(b))");
    assert_eq!(a.and(&b).negate().to_string(), "!(a == \"x\" && !has(b))");
    assert_eq!(a.and(&b), parse("(a == 'x') && (!has(b))").unwrap());
}

#[test]
fn equality_and_hash_follow_canonical_form() {
    let x = parse("a == 'v' && b in {'2','1','1'}").unwrap();
    let y = parse("(a==\"v\")&&b in {\"1\",\"2\",}").unwrap();
    assert_eq!(x, y);
    assert_eq!(x.unique_id(), y.unique_id());
    let set: HashSet<Selector> = [x.clone(), y].into_iter().collect();
    assert_eq!(set.len(), 1);
    assert_ne!(x, parse("a == 'v'").unwrap());
    assert_eq!(
        "has(a)".parse::<Selector>().unwrap(),
        parse("has( a )").unwrap()
    );
    assert_eq!(
        format!("{x:?}"),
        "Selector(\"(a == \\\"v\\\" && b in {\\\"1\\\", \\\"2\\\"})\")"
    );
}

#[test]
fn semantics_table() {
    // Calico §4.2, one row per node kind, on present / absent / empty-valued labels.
    let l = BTreeMap::from([
        ("a".to_string(), "hello".to_string()),
        ("e".to_string(), String::new()),
    ]);
    let cases = [
        ("a == 'hello'", true),
        ("z == 'hello'", false),
        ("a != 'x'", true),
        ("z != 'x'", true),
        ("a != 'hello'", false),
        ("a in {'hello', 'x'}", true),
        ("z in {'hello'}", false),
        ("a in {}", false),
        ("a not in {'x'}", true),
        ("z not in {'x'}", true),
        ("a not in {'hello'}", false),
        ("has(e)", true),
        ("e == ''", true),
        ("has(z)", false),
        ("a contains 'ell'", true),
        ("z contains ''", false),
        ("e contains ''", true),
        ("a starts with 'he'", true),
        ("a ends with 'lo'", true),
        ("a ends with 'he'", false),
        ("all()", true),
        ("global()", true),
        ("!global()", false),
        ("has(z) || a == 'hello'", true),
        ("has(z) && a == 'hello'", false),
    ];
    for (sel, expected) in cases {
        assert_eq!(parse(sel).unwrap().evaluate(&l), expected, "{sel}");
    }
}
