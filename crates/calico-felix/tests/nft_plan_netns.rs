//! Table plans over nf_tables netlink (`NftDriver::apply_plan`) against the same changes
//! through `nft -f`, each in its own throw-away network namespace: a plan written by hand in
//! `calico_nft::bytecode` terms (every expression kind, named sets of every kind with
//! elements, anonymous sets plain, interval and concatenated, chains added, flushed and
//! deleted, a set deleted) must leave a table that
//! - lists, rule by rule, the expressions the plan holds (`nft --debug=netlink list table`
//!   against the IR's `Display`), and
//! - lists exactly like the table nft builds from the equivalent script (`nft list table`:
//!   set elements, anonymous sets printed through their key byte order, rule text) and
//!   `nft --debug=netlink` shows the same expressions for both.
//!
//! A refused batch names the op and changes nothing (the kernel aborts the whole batch). The
//! root network namespace is never touched. Without root these tests skip with a note (and
//! fail with `CALICO_REQUIRE_ROOT=1`).

#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use calico_felix::policy::{DataplaneError, NftDriver, PolicyDataplane};
use calico_netlink::testing::{TestNetns, require_root_and_nft};
use calico_nft::bytecode::{
    AnonElement, AnonSet, CmpOp, Expr, MetaKey, NamedSetKind, PayloadBase, RuleCode, SetRef,
    TableOp, VerdictCode,
};
use calico_nft::{Element, ElementOp, Verdict};

/// The table before the plan: a set and a chain the plan deletes, a chain it flushes and
/// refills, the dispatch map, and a base chain (which jumps nowhere, so `main`'s `notrack`
/// and `fib` are not checked against the forward hook).
const SKELETON: &str = "table inet calico {
\tset old4 { type ipv4_addr; }
\tmap to-wl { type ifname : verdict; }
\tchain gone {
\t\taccept
\t}
\tchain keep {
\t\tdrop
\t}
\tchain fw {
\t\ttype filter hook forward priority filter; policy accept;
\t}
}
";

use CmpOp::*;
use MetaKey::*;
use PayloadBase::*;

fn meta(key: MetaKey, dreg: u32) -> Expr {
    Expr::MetaLoad { key, dreg }
}

fn cmp(op: CmpOp, data: &[u8]) -> Expr {
    Expr::Cmp {
        op,
        sreg: 1,
        data: data.to_vec(),
    }
}

fn load(base: PayloadBase, offset: u32, len: u32, dreg: u32) -> Expr {
    Expr::Payload {
        base,
        offset,
        len,
        dreg,
    }
}

fn lookup(set: SetRef, invert: bool) -> Expr {
    Expr::Lookup {
        sreg: 1,
        set,
        dreg: None,
        invert,
    }
}

fn named(s: &str) -> SetRef {
    SetRef::Named(s.into())
}

fn bitwise(mask: [u8; 4], xor: [u8; 4]) -> Expr {
    Expr::Bitwise {
        sreg: 1,
        dreg: 1,
        mask: mask.to_vec(),
        xor: xor.to_vec(),
    }
}

fn verdict(v: VerdictCode) -> Expr {
    Expr::Verdict(v)
}

fn ipv4() -> [Expr; 2] {
    [meta(Nfproto, 1), cmp(Eq, &[2])]
}

fn ipv6() -> [Expr; 2] {
    [meta(Nfproto, 1), cmp(Eq, &[10])]
}

fn set(
    key_type: u32,
    key_len: u32,
    concat: &[u32],
    interval: bool,
    keys: &[(&[u8], bool)],
) -> AnonSet {
    AnonSet {
        key_type,
        key_len,
        concat: concat.to_vec(),
        interval,
        elements: keys
            .iter()
            .map(|(k, end)| AnonElement {
                key: k.to_vec(),
                interval_end: *end,
            })
            .collect(),
    }
}

fn v6(s: &str) -> Vec<u8> {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec()
}

fn ifname(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.resize(16, 0);
    v
}

/// The rules of chain `main`: their nft text and the expressions nft 1.0.6 generates for
/// them (as `nft --debug=netlink` prints them), covering every [`Expr`] variant.
fn main_rules() -> Vec<(&'static str, RuleCode)> {
    let rule = |exprs: Vec<Expr>, anon_sets: Vec<AnonSet>| RuleCode { exprs, anon_sets };
    let cat = |parts: &[&[Expr]]| parts.concat();
    vec![
        (
            "meta mark & 0x10 == 0x10 ct state established,related accept",
            rule(
                vec![
                    meta(Mark, 1),
                    bitwise([0x10, 0, 0, 0], [0; 4]),
                    cmp(Eq, &[0x10, 0, 0, 0]),
                    Expr::CtState { dreg: 1 },
                    bitwise([6, 0, 0, 0], [0; 4]),
                    cmp(Neq, &[0; 4]),
                    verdict(VerdictCode::Accept),
                ],
                vec![],
            ),
        ),
        (
            "meta mark set meta mark | 0x100 fib saddr . mark . iif oif 0 drop",
            rule(
                vec![
                    meta(Mark, 1),
                    bitwise([0xff, 0xfe, 0xff, 0xff], [0, 1, 0, 0]),
                    Expr::MetaSet { key: Mark, sreg: 1 },
                    Expr::FibSaddrMarkIifOif { dreg: 1 },
                    cmp(Eq, &[0; 4]),
                    verdict(VerdictCode::Drop),
                ],
                vec![],
            ),
        ),
        (
            "iifname \"cali*\" oifname \"eth0\" meta l4proto udp th sport != 1-1023 \
             th dport 1000-2000 return",
            rule(
                vec![
                    meta(Iifname, 1),
                    cmp(Eq, b"cali"),
                    meta(Oifname, 1),
                    cmp(Eq, &ifname("eth0")),
                    meta(L4proto, 1),
                    cmp(Eq, &[17]),
                    load(Transport, 0, 2, 1),
                    Expr::Range {
                        op: Neq,
                        sreg: 1,
                        from: vec![0, 1],
                        to: vec![3, 0xff],
                    },
                    load(Transport, 2, 2, 1),
                    cmp(Gte, &[0x03, 0xe8]),
                    cmp(Lte, &[0x07, 0xd0]),
                    verdict(VerdictCode::Return),
                ],
                vec![],
            ),
        ),
        (
            "ip saddr @a4 ip daddr != @n4 meta l4proto . th dport @pp \
             log prefix \"calico-drop: \" level info drop",
            rule(
                cat(&[
                    &ipv4(),
                    &[
                        load(Network, 12, 4, 1),
                        lookup(named("a4"), false),
                        load(Network, 16, 4, 1),
                        lookup(named("n4"), true),
                        meta(L4proto, 1),
                        load(Transport, 2, 2, 9),
                        lookup(named("pp"), false),
                        Expr::Log {
                            prefix: "calico-drop: ".into(),
                            level: 6,
                        },
                        verdict(VerdictCode::Drop),
                    ],
                ]),
                vec![],
            ),
        ),
        (
            "ip6 saddr @a6 ip6 daddr @n6 jump target",
            rule(
                cat(&[
                    &ipv6(),
                    &[
                        load(Network, 8, 16, 1),
                        lookup(named("a6"), false),
                        load(Network, 24, 16, 1),
                        lookup(named("n6"), false),
                        verdict(VerdictCode::Jump("target".into())),
                    ],
                ]),
                vec![],
            ),
        ),
        (
            "ip daddr . meta l4proto . th dport @p4 goto target",
            rule(
                cat(&[
                    &ipv4(),
                    &[
                        load(Network, 16, 4, 1),
                        meta(L4proto, 9),
                        load(Transport, 2, 2, 10),
                        lookup(named("p4"), false),
                        verdict(VerdictCode::Goto("target".into())),
                    ],
                ]),
                vec![],
            ),
        ),
        (
            "ip6 daddr . meta l4proto . th dport @p6 accept",
            rule(
                cat(&[
                    &ipv6(),
                    &[
                        load(Network, 24, 16, 1),
                        meta(L4proto, 2),
                        load(Transport, 2, 2, 13),
                        lookup(named("p6"), false),
                        verdict(VerdictCode::Accept),
                    ],
                ]),
                vec![],
            ),
        ),
        (
            "ip saddr { 10.0.0.0/8, 192.168.1.1 } ip daddr { 10.1.0.1, 10.1.0.2 } accept",
            rule(
                cat(&[
                    &ipv4(),
                    &[
                        load(Network, 12, 4, 1),
                        lookup(SetRef::Anonymous(0), false),
                        load(Network, 16, 4, 1),
                        lookup(SetRef::Anonymous(1), false),
                        verdict(VerdictCode::Accept),
                    ],
                ]),
                vec![
                    set(
                        7,
                        4,
                        &[],
                        true,
                        &[
                            (&[0, 0, 0, 0], true),
                            (&[10, 0, 0, 0], false),
                            (&[11, 0, 0, 0], true),
                            (&[192, 168, 1, 1], false),
                            (&[192, 168, 1, 2], true),
                        ],
                    ),
                    set(
                        7,
                        4,
                        &[],
                        false,
                        &[(&[10, 1, 0, 1], false), (&[10, 1, 0, 2], false)],
                    ),
                ],
            ),
        ),
        (
            "meta l4proto { tcp, udp, sctp, udplite } th dport { 80-86, 90-120 } accept",
            rule(
                vec![
                    meta(L4proto, 1),
                    lookup(SetRef::Anonymous(0), false),
                    load(Transport, 2, 2, 1),
                    lookup(SetRef::Anonymous(1), false),
                    verdict(VerdictCode::Accept),
                ],
                vec![
                    set(
                        12,
                        1,
                        &[],
                        false,
                        &[
                            (&[6], false),
                            (&[17], false),
                            (&[132], false),
                            (&[136], false),
                        ],
                    ),
                    set(
                        13,
                        2,
                        &[],
                        true,
                        &[
                            (&[0, 0], true),
                            (&[0, 80], false),
                            (&[0, 87], true),
                            (&[0, 90], false),
                            (&[0, 121], true),
                        ],
                    ),
                ],
            ),
        ),
        (
            "meta l4proto icmpv6 icmpv6 type . icmpv6 code != { 1 . 3 } drop",
            rule(
                vec![
                    meta(L4proto, 1),
                    cmp(Eq, &[58]),
                    load(Transport, 0, 1, 1),
                    load(Transport, 1, 1, 9),
                    lookup(SetRef::Anonymous(0), true),
                    verdict(VerdictCode::Drop),
                ],
                // icmpv6_type (29) . icmpv6_code (33).
                vec![set(
                    (29 << 6) | 33,
                    8,
                    &[1, 1],
                    false,
                    &[(&[1, 0, 0, 0, 3, 0, 0, 0], false)],
                )],
            ),
        ),
        (
            "ip6 saddr { fd00::/64, fd01::1 } notrack accept",
            rule(
                cat(&[
                    &ipv6(),
                    &[
                        load(Network, 8, 16, 1),
                        lookup(SetRef::Anonymous(0), false),
                        Expr::Notrack,
                        verdict(VerdictCode::Accept),
                    ],
                ]),
                vec![set(
                    8,
                    16,
                    &[],
                    true,
                    &[
                        (&v6("::"), true),
                        (&v6("fd00::"), false),
                        (&v6("fd00:0:0:1::"), true),
                        (&v6("fd01::1"), false),
                        (&v6("fd01::2"), true),
                    ],
                )],
            ),
        ),
        (
            "oifname vmap @to-wl",
            rule(
                vec![
                    meta(Oifname, 1),
                    Expr::Lookup {
                        sreg: 1,
                        set: named("to-wl"),
                        dreg: Some(0),
                        invert: false,
                    },
                ],
                vec![],
            ),
        ),
        (
            "ip daddr . meta l4proto . th dport { 10.0.0.1 . tcp . 80, 10.0.0.2 . udp . 53 } accept",
            rule(
                cat(&[
                    &ipv4(),
                    &[
                        load(Network, 16, 4, 1),
                        meta(L4proto, 9),
                        load(Transport, 2, 2, 10),
                        lookup(SetRef::Anonymous(0), false),
                        verdict(VerdictCode::Accept),
                    ],
                ]),
                vec![set(
                    (7 << 12) | (12 << 6) | 13,
                    12,
                    &[4, 1, 2],
                    false,
                    &[
                        (&[10, 0, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0], false),
                        (&[10, 0, 0, 2, 17, 0, 0, 0, 0, 53, 0, 0], false),
                    ],
                )],
            ),
        ),
        (
            // Host-order keys: `nft list` prints them right only with the key byte order
            // nft stores in the set's user data.
            "meta mark { 0x1, 0x2 } iifname { \"cali1\", \"eth0\" } accept",
            rule(
                vec![
                    meta(Mark, 1),
                    lookup(SetRef::Anonymous(0), false),
                    meta(Iifname, 1),
                    lookup(SetRef::Anonymous(1), false),
                    verdict(VerdictCode::Accept),
                ],
                vec![
                    set(
                        19,
                        4,
                        &[],
                        false,
                        &[(&[1, 0, 0, 0], false), (&[2, 0, 0, 0], false)],
                    ),
                    set(
                        41,
                        16,
                        &[],
                        false,
                        &[(&ifname("cali1"), false), (&ifname("eth0"), false)],
                    ),
                ],
            ),
        ),
    ]
}

fn keep_rule() -> (&'static str, RuleCode) {
    (
        "tcp dport 22 accept",
        RuleCode {
            exprs: vec![
                meta(L4proto, 1),
                cmp(Eq, &[6]),
                load(Transport, 2, 2, 1),
                cmp(Eq, &[0, 22]),
                verdict(VerdictCode::Accept),
            ],
            anon_sets: vec![],
        },
    )
}

/// A named set: name, kind, its nft declaration, elements as nft text and as values.
type NamedSet = (
    &'static str,
    NamedSetKind,
    &'static str,
    Vec<(&'static str, Element)>,
);

fn named_sets() -> Vec<NamedSet> {
    let addr = |s: &str| Element::Addr(s.parse().unwrap());
    let net = |s: &str| Element::Net(s.parse().unwrap());
    vec![
        (
            "a4",
            NamedSetKind::Addr(4),
            "type ipv4_addr;",
            vec![
                ("10.0.0.1", addr("10.0.0.1")),
                ("10.0.0.2", addr("10.0.0.2")),
            ],
        ),
        (
            "a6",
            NamedSetKind::Addr(6),
            "type ipv6_addr;",
            vec![("fd00::1", addr("fd00::1"))],
        ),
        (
            "n4",
            NamedSetKind::Net(4),
            "type ipv4_addr; flags interval;",
            vec![
                ("10.0.0.0/24", net("10.0.0.0/24")),
                ("10.1.0.0/16", net("10.1.0.0/16")),
            ],
        ),
        (
            "n6",
            NamedSetKind::Net(6),
            "type ipv6_addr; flags interval;",
            vec![("fd00::/64", net("fd00::/64"))],
        ),
        (
            "p4",
            NamedSetKind::AddrProtoPort(4),
            "type ipv4_addr . inet_proto . inet_service;",
            vec![(
                "10.0.0.1 . tcp . 80",
                Element::AddrProtoPort {
                    addr: "10.0.0.1".parse().unwrap(),
                    protocol: 6,
                    port: 80,
                },
            )],
        ),
        (
            "p6",
            NamedSetKind::AddrProtoPort(6),
            "type ipv6_addr . inet_proto . inet_service;",
            vec![(
                "fd00::1 . udp . 53",
                Element::AddrProtoPort {
                    addr: "fd00::1".parse().unwrap(),
                    protocol: 17,
                    port: 53,
                },
            )],
        ),
        (
            "pp",
            NamedSetKind::ProtoPort,
            "type inet_proto . inet_service;",
            vec![(
                "tcp . 443",
                Element::ProtoPort {
                    protocol: 6,
                    port: 443,
                },
            )],
        ),
    ]
}

fn element(set: &str, text: &str, value: Element) -> TableOp {
    TableOp::Element(ElementOp {
        set: set.into(),
        add: true,
        element: text.into(),
        value,
    })
}

/// The plan and the equivalent nft script, step for step.
fn plan_and_script() -> (Vec<TableOp>, String) {
    let mut ops = Vec::new();
    let mut script = String::new();
    let sets = named_sets();
    for (name, kind, decl, _) in &sets {
        ops.push(TableOp::AddSet {
            name: (*name).into(),
            kind: *kind,
        });
        script.push_str(&format!("add set inet calico {name} {{ {decl} }}\n"));
    }
    for (name, _, _, elements) in &sets {
        for (text, value) in elements {
            ops.push(element(name, text, value.clone()));
            script.push_str(&format!("add element inet calico {name} {{ {text} }}\n"));
        }
    }
    for chain in ["target", "main"] {
        ops.push(TableOp::AddChain { name: chain.into() });
        script.push_str(&format!("add chain inet calico {chain}\n"));
    }
    // A map entry jumping to a chain created earlier in the same batch.
    ops.push(TableOp::Element(ElementOp {
        set: "to-wl".into(),
        add: true,
        element: "\"cali1\" : goto target".into(),
        value: Element::IfaceVerdict {
            iface: "cali1".into(),
            verdict: Verdict::Goto("target".into()),
        },
    }));
    script.push_str("add element inet calico to-wl { \"cali1\" : goto target }\n");
    for (text, rule) in main_rules() {
        ops.push(TableOp::AddRule {
            chain: "main".into(),
            rule,
        });
        script.push_str(&format!("add rule inet calico main {text}\n"));
    }
    let (text, rule) = keep_rule();
    ops.push(TableOp::FlushChain {
        name: "keep".into(),
    });
    ops.push(TableOp::AddRule {
        chain: "keep".into(),
        rule,
    });
    script.push_str(&format!(
        "flush chain inet calico keep\nadd rule inet calico keep {text}\n"
    ));
    ops.push(TableOp::FlushChain {
        name: "gone".into(),
    });
    ops.push(TableOp::DeleteChain {
        name: "gone".into(),
    });
    ops.push(TableOp::DeleteSet {
        name: "old4".into(),
    });
    script.push_str(
        "flush chain inet calico gone\ndelete chain inet calico gone\ndelete set inet calico old4\n",
    );
    (ops, script)
}

fn setup(prefix: &str) -> (TestNetns, NftDriver) {
    let ns = TestNetns::new(prefix).unwrap();
    let mut d = NftDriver::new("calico", Some(ns.path()));
    d.apply(SKELETON).unwrap();
    (ns, d)
}

fn list(ns: &TestNetns) -> String {
    ns.exec(&["nft", "list", "table", "inet", "calico"])
        .unwrap()
}

/// The rules of every chain as `nft --debug=netlink list table` prints their expressions:
/// (chain, expression lines) in listing order. Rule headers (`inet calico <chain> <handle>
/// [<position>]`) start a rule; set dumps (`inet calico @<set>`, element lines) are skipped.
/// Normalized to what nft prints when it adds a rule (as the IR's `Display` does): anonymous
/// sets as `__set%d` (the kernel numbered them), no `0x0` lookup flags.
fn debug_rules(ns: &TestNetns) -> Vec<(String, Vec<String>)> {
    let out = ns
        .exec(&["nft", "--debug=netlink", "list", "table", "inet", "calico"])
        .unwrap();
    let mut rules: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_rule = false;
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("inet calico ") {
            in_rule = !rest.starts_with('@');
            if in_rule {
                let chain = rest.split_whitespace().next().unwrap_or_default();
                rules.push((chain.to_string(), Vec::new()));
            }
            continue;
        }
        if !in_rule || !line.starts_with("  [") {
            continue;
        }
        let mut l = line.trim().to_string();
        if let Some(at) = l.find("set __set") {
            let digits = l[at + 9..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .count();
            l.replace_range(at + 9..at + 9 + digits, "%d");
        }
        if l.starts_with("[ lookup ") {
            l = l.replace(" 0x0 ]", " ]");
        }
        if let Some((_, exprs)) = rules.last_mut() {
            exprs.push(l);
        }
    }
    rules
}

fn display(rule: &RuleCode) -> Vec<String> {
    rule.exprs.iter().map(|e| e.to_string()).collect()
}

#[test]
fn a_plan_over_netlink_builds_the_table_nft_builds() {
    if !require_root_and_nft() {
        return;
    }
    let (ns_nl, mut netlink) = setup("felix-plan");
    let (ns_nft, mut via_nft) = setup("felix-plan-nft");
    let (ops, script) = plan_and_script();
    netlink.apply_plan("calico", &ops).unwrap();
    via_nft.apply(&script).unwrap();

    // What the kernel holds is what the plan says, rule by rule.
    let mut want: Vec<(String, Vec<String>)> = vec![("keep".into(), display(&keep_rule().1))];
    want.extend(
        main_rules()
            .iter()
            .map(|(_, r)| ("main".to_string(), display(r))),
    );
    let got = debug_rules(&ns_nl);
    assert_eq!(got.len(), want.len(), "rules listed: {got:#?}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "rule {i}");
    }
    // ... and what nft made of the same script.
    assert_eq!(debug_rules(&ns_nft), got);
    let (a, b) = (list(&ns_nl), list(&ns_nft));
    assert_eq!(a, b, "nft list: netlink vs nft");
    for expect in [
        "meta mark { 0x00000001, 0x00000002 } iifname { \"eth0\", \"cali1\" } accept",
        "elements = { 10.0.0.0/24, 10.1.0.0/16 }",
        "elements = { 10.0.0.1 . tcp . 80 }",
        "\"cali1\" : goto target",
    ] {
        assert!(a.contains(expect), "{expect} missing from\n{a}");
    }
    assert!(!a.contains("old4") && !a.contains("chain gone"), "{a}");
    // The JSON listing (what the manager's drift check reads) agrees too.
    let json = |ns: &TestNetns| {
        ns.exec(&["nft", "-j", "list", "table", "inet", "calico"])
            .unwrap()
    };
    assert_eq!(json(&ns_nl), json(&ns_nft));

    // A second plan on the kept socket: replace main's rules, drop a set it no longer uses.
    let second = vec![
        TableOp::FlushChain {
            name: "main".into(),
        },
        TableOp::AddRule {
            chain: "main".into(),
            rule: keep_rule().1,
        },
        TableOp::DeleteSet { name: "pp".into() },
        TableOp::DeleteChain {
            name: "target".into(),
        },
    ];
    // `target` is still referenced by the map entry: refused, nothing changes.
    let before = list(&ns_nl);
    let err = netlink.apply_plan("calico", &second).unwrap_err();
    assert!(
        err.to_string()
            .contains("delete chain target (op 3 of the plan)"),
        "{err}"
    );
    assert_eq!(list(&ns_nl), before, "a refused batch changed the table");
    netlink.apply_plan("calico", &second[..3]).unwrap();
    via_nft
        .apply(
            "flush chain inet calico main\nadd rule inet calico main tcp dport 22 accept\n\
             delete set inet calico pp\n",
        )
        .unwrap();
    assert_eq!(list(&ns_nl), list(&ns_nft));
}

#[test]
fn a_refused_plan_names_the_op_and_changes_nothing() {
    if !require_root_and_nft() {
        return;
    }
    let (ns, mut d) = setup("felix-plan-bad");
    let before = list(&ns);
    let jump_missing = TableOp::AddRule {
        chain: "fresh".into(),
        rule: RuleCode {
            exprs: vec![verdict(VerdictCode::Jump("missing".into()))],
            anon_sets: vec![],
        },
    };
    let ops = vec![
        TableOp::AddSet {
            name: "x4".into(),
            kind: NamedSetKind::Addr(4),
        },
        TableOp::AddChain {
            name: "fresh".into(),
        },
        TableOp::AddRule {
            chain: "fresh".into(),
            rule: keep_rule().1,
        },
        jump_missing,
    ];
    let err = d.apply_plan("calico", &ops).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("append rule #2 to chain fresh (op 3 of the plan) in table inet calico"),
        "{text}"
    );
    assert!(
        matches!(&err, DataplaneError::Netlink { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert_eq!(list(&ns), before, "a refused batch changed the table");

    // A set still in use.
    d.apply_plan(
        "calico",
        &[TableOp::AddRule {
            chain: "keep".into(),
            rule: RuleCode {
                exprs: vec![
                    meta(Nfproto, 1),
                    cmp(Eq, &[2]),
                    load(Network, 12, 4, 1),
                    lookup(named("old4"), false),
                    verdict(VerdictCode::Accept),
                ],
                anon_sets: vec![],
            },
        }],
    )
    .unwrap();
    let before = list(&ns);
    let err = d
        .apply_plan(
            "calico",
            &[
                TableOp::AddChain {
                    name: "other".into(),
                },
                TableOp::DeleteSet {
                    name: "old4".into(),
                },
            ],
        )
        .unwrap_err();
    assert!(
        matches!(&err, DataplaneError::Netlink { set: Some(s), .. } if s == "old4"),
        "{err:?}"
    );
    assert!(err.to_string().contains("delete set old4"), "{err}");
    assert_eq!(list(&ns), before);

    // Invalid plans are refused before anything is sent; too large ones have no netlink path.
    let err = d
        .apply_plan("calico", &[TableOp::AddChain { name: "".into() }])
        .unwrap_err();
    assert!(
        err.to_string().contains("not a valid nft chain name"),
        "{err}"
    );
    let many: Vec<TableOp> = (0..100_000)
        .map(|i| TableOp::AddChain {
            name: format!("c{i}"),
        })
        .collect();
    let err = d.apply_plan("calico", &many).unwrap_err();
    assert!(
        matches!(err, DataplaneError::NoNetlinkPath { .. }),
        "{err:?}"
    );
    assert_eq!(list(&ns), before);
    // And the socket still works after all those refusals.
    d.apply_plan(
        "calico",
        &[TableOp::AddChain {
            name: "after".into(),
        }],
    )
    .unwrap();
    assert!(list(&ns).contains("chain after"));
}
