//! Set and map element changes over nf_tables netlink (`NftDriver::apply_elements`) against
//! the same changes through `nft`, each in its own throw-away network namespace: after every
//! step both tables list identically (`nft -j list table`). Refused batches (missing set,
//! element of the wrong length, missing element) report the kernel's errno and name the set
//! and element, and change nothing. The root network namespace is never touched.
//!
//! Without root these tests skip with a note (and fail with `CALICO_REQUIRE_ROOT=1`).

#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use calico_felix::policy::{
    DataplaneError, NftDriver, NftMetrics, PolicyDataplane, PolicyManager, SyncAction,
};
use calico_netlink::testing::{TestNetns, require_root_and_nft};
use calico_nft::{Element, ElementOp, NftConfig, Verdict, compile, render_elements};

const TABLE: &str = "table inet calico {
\tset a4-x { type ipv4_addr; }
\tset a6-x { type ipv6_addr; }
\tset n4-x { type ipv4_addr; flags interval; }
\tset n6-x { type ipv6_addr; flags interval; }
\tset p4-x { type ipv4_addr . inet_proto . inet_service; }
\tset p6-x { type ipv6_addr . inet_proto . inet_service; }
\tset pp-x { type inet_proto . inet_service; }
\tmap to-wl { type ifname : verdict; }
\tchain tw-cali1 {
\t\tdrop
\t}
\tchain tw-cali2 {
\t\taccept
\t}
\tchain fw {
\t\ttype filter hook forward priority filter; policy accept;
\t\toifname vmap @to-wl
\t\tip saddr @n4-x ip daddr @a4-x meta l4proto . th dport @pp-x accept
\t\tip6 saddr @n6-x ip6 daddr @a6-x accept
\t\tip daddr . meta l4proto . th dport @p4-x accept
\t\tip6 daddr . meta l4proto . th dport @p6-x accept
\t}
}
";

fn op(set: &str, add: bool, element: &str, value: Element) -> ElementOp {
    ElementOp {
        set: set.into(),
        add,
        element: element.into(),
        value,
    }
}

fn addr(set: &str, add: bool, a: &str) -> ElementOp {
    op(set, add, a, Element::Addr(a.parse().unwrap()))
}

fn net(set: &str, add: bool, n: &str) -> ElementOp {
    let value = match n.parse() {
        Ok(n) => n,
        Err(_) => ipnet::IpNet::from(n.parse::<std::net::IpAddr>().unwrap()),
    };
    op(set, add, n, Element::Net(value))
}

fn port(set: &str, add: bool, a: &str, proto: (&str, u8), p: u16) -> ElementOp {
    op(
        set,
        add,
        &format!("{a} . {} . {p}", proto.0),
        Element::AddrProtoPort {
            addr: a.parse().unwrap(),
            protocol: proto.1,
            port: p,
        },
    )
}

fn entry(add: bool, iface: &str, chain: &str, goto: bool) -> ElementOp {
    let (word, verdict) = if goto {
        ("goto", Verdict::Goto(chain.into()))
    } else {
        ("jump", Verdict::Jump(chain.into()))
    };
    op(
        "to-wl",
        add,
        &format!("\"{iface}\" : {word} {chain}"),
        Element::IfaceVerdict {
            iface: iface.into(),
            verdict,
        },
    )
}

const TCP: (&str, u8) = ("tcp", 6);
const UDP: (&str, u8) = ("udp", 17);

fn list(ns: &TestNetns) -> String {
    ns.exec(&["nft", "-j", "list", "table", "inet", "calico"])
        .unwrap()
}

fn setup() -> Option<(TestNetns, NftDriver)> {
    if !require_root_and_nft() {
        return None;
    }
    let ns = TestNetns::new("felix-elem").unwrap();
    let mut d = NftDriver::new("calico", Some(ns.path()));
    d.apply(TABLE).unwrap();
    Some((ns, d))
}

#[test]
fn every_kind_of_element_lists_the_same_as_through_nft() {
    let Some((ns_nl, mut netlink)) = setup() else {
        return;
    };
    let ns_nft = TestNetns::new("felix-elem-nft").unwrap();
    let mut via_nft = NftDriver::new("calico", Some(ns_nft.path()));
    via_nft.apply(TABLE).unwrap();
    assert_eq!(list(&ns_nl), list(&ns_nft));

    let steps: Vec<Vec<ElementOp>> = vec![
        vec![
            addr("a4-x", true, "10.0.0.1"),
            addr("a4-x", true, "10.0.0.2"),
            addr("a6-x", true, "fd00::1"),
            net("n4-x", true, "0.0.0.0/8"),
            net("n4-x", true, "10.0.0.0/24"),
            net("n4-x", true, "10.0.1.0/24"),
            net("n4-x", true, "10.0.2.5"),
            net("n4-x", true, "192.168.0.0/16"),
            net("n4-x", true, "255.255.255.0/24"),
            net("n6-x", true, "fd00::/64"),
            net("n6-x", true, "fd01::1"),
            net("n6-x", true, "ffff::/16"),
            port("p4-x", true, "10.0.0.1", TCP, 80),
            port("p4-x", true, "10.0.0.1", UDP, 53),
            port("p4-x", true, "10.0.0.9", ("sctp", 132), 65535),
            port("p6-x", true, "fd00::1", TCP, 443),
            op(
                "pp-x",
                true,
                "tcp . 22",
                Element::ProtoPort {
                    protocol: 6,
                    port: 22,
                },
            ),
            entry(true, "cali1", "tw-cali1", true),
            entry(true, "cali0123456789a", "tw-cali2", false),
        ],
        // Deletions of each kind, a map entry changed (delete + add in one batch), and an
        // interval replaced by one that covers it.
        vec![
            addr("a4-x", false, "10.0.0.1"),
            net("n4-x", false, "0.0.0.0/8"),
            net("n4-x", false, "10.0.0.0/24"),
            net("n4-x", false, "255.255.255.0/24"),
            net("n4-x", false, "192.168.0.0/16"),
            net("n4-x", true, "192.168.0.0/15"),
            net("n6-x", false, "ffff::/16"),
            port("p4-x", false, "10.0.0.1", UDP, 53),
            entry(false, "cali1", "tw-cali1", true),
            entry(true, "cali1", "tw-cali2", true),
            entry(true, "cali2", "tw-cali1", true),
        ],
        // Everything left, out.
        vec![
            addr("a4-x", false, "10.0.0.2"),
            addr("a6-x", false, "fd00::1"),
            net("n4-x", false, "10.0.1.0/24"),
            net("n4-x", false, "10.0.2.5"),
            net("n4-x", false, "192.168.0.0/15"),
            net("n6-x", false, "fd00::/64"),
            net("n6-x", false, "fd01::1"),
            port("p4-x", false, "10.0.0.1", TCP, 80),
            port("p4-x", false, "10.0.0.9", ("sctp", 132), 65535),
            port("p6-x", false, "fd00::1", TCP, 443),
            op(
                "pp-x",
                false,
                "tcp . 22",
                Element::ProtoPort {
                    protocol: 6,
                    port: 22,
                },
            ),
            entry(false, "cali1", "tw-cali2", true),
            entry(false, "cali2", "tw-cali1", true),
            entry(false, "cali0123456789a", "tw-cali2", false),
        ],
    ];
    for (i, ops) in steps.iter().enumerate() {
        netlink.apply_elements("calico", ops).unwrap();
        via_nft
            .apply(&render_elements("calico", ops))
            .unwrap_or_else(|e| panic!("step {i} through nft: {e}"));
        let (a, b) = (list(&ns_nl), list(&ns_nft));
        assert_eq!(a, b, "step {i}: netlink vs nft listing");
        if i == 0 {
            let text = ns_nl
                .exec(&["nft", "list", "table", "inet", "calico"])
                .unwrap();
            for want in [
                "10.0.0.0/24",
                "10.0.1.0/24",
                "10.0.2.5",
                "255.255.255.0/24",
                "ffff::/16",
                "10.0.0.9 . sctp . 65535",
                "\"cali1\" : goto tw-cali1",
                "\"cali0123456789a\" : jump tw-cali2",
            ] {
                assert!(text.contains(want), "{want} missing from\n{text}");
            }
            // The kernel finds addresses inside the intervals (and not outside them)
            // without the leading zero "end" element nft adds to interval sets.
            let get = |set: &str, key: &str| {
                ns_nl.exec(&[
                    "nft", "get", "element", "inet", "calico", set, "{", key, "}",
                ])
            };
            for (key, within) in [
                ("10.0.0.77", Some("10.0.0.0/24")),
                ("0.0.0.0", Some("0.0.0.0/8")),
                ("10.0.2.5", Some("10.0.2.5")),
                ("255.255.255.255", Some("255.255.255.0/24")),
                ("10.0.3.1", None),
                ("9.255.255.255", None),
            ] {
                match (get("n4-x", key), within) {
                    (Ok(out), Some(w)) => assert!(out.contains(w), "{key}: {out}"),
                    (Err(_), None) => {}
                    (got, want) => panic!("{key}: got {got:?}, want {want:?}"),
                }
            }
        }
    }
    // Back to empty sets: same as the freshly loaded table.
    let fresh = TestNetns::new("felix-elem-fresh").unwrap();
    NftDriver::new("calico", Some(fresh.path()))
        .apply(TABLE)
        .unwrap();
    assert_eq!(list(&ns_nl), list(&fresh));
}

/// The error of a refused batch, and the table unchanged.
fn refused(d: &mut NftDriver, ns: &TestNetns, ops: &[ElementOp]) -> DataplaneError {
    let before = list(ns);
    let err = d.apply_elements("calico", ops).unwrap_err();
    assert_eq!(list(ns), before, "a refused batch changed the table: {err}");
    err
}

fn errno(e: &DataplaneError) -> Option<i32> {
    match e {
        DataplaneError::Netlink { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

#[test]
fn refused_batches_name_the_set_and_element_and_change_nothing() {
    let Some((ns, mut d)) = setup() else {
        return;
    };
    d.apply_elements("calico", &[addr("a4-x", true, "10.0.0.1")])
        .unwrap();

    // A missing set after a valid add: ENOENT, the valid add is not applied either.
    let err = refused(
        &mut d,
        &ns,
        &[
            addr("a4-x", true, "10.0.0.7"),
            addr("a4-nope", true, "10.0.0.8"),
        ],
    );
    assert_eq!(errno(&err), Some(libc_enoent()), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("set a4-nope") && text.contains("10.0.0.8"),
        "{text}"
    );
    assert!(matches!(&err, DataplaneError::Netlink { set: Some(s), .. } if s == "a4-nope"));

    // An IPv6 address into an IPv4 set: the kernel refuses the key length (EINVAL) and the
    // error names that element among several.
    let err = refused(
        &mut d,
        &ns,
        &[
            addr("a4-x", true, "10.0.0.7"),
            addr("a4-x", true, "fd00::7"),
            addr("a4-x", true, "10.0.0.9"),
        ],
    );
    assert_eq!(errno(&err), Some(22), "{err}");
    assert!(
        matches!(&err, DataplaneError::Netlink { element: Some(e), .. } if e == "fd00::7"),
        "{err:?}"
    );

    // Deleting an element that is not there: ENOENT naming it; the other delete stays undone.
    let err = refused(
        &mut d,
        &ns,
        &[
            addr("a4-x", false, "10.0.0.1"),
            addr("a4-x", false, "10.9.9.9"),
        ],
    );
    assert_eq!(errno(&err), Some(libc_enoent()), "{err}");
    assert!(
        matches!(&err, DataplaneError::Netlink { element: Some(e), .. } if e == "10.9.9.9"),
        "{err:?}"
    );

    // A map entry jumping to a chain that does not exist.
    let err = refused(&mut d, &ns, &[entry(true, "cali9", "tw-nope", true)]);
    assert_eq!(errno(&err), Some(libc_enoent()), "{err}");

    // A missing table.
    let err = d
        .apply_elements("nope", &[addr("a4-x", true, "10.0.0.1")])
        .unwrap_err();
    assert_eq!(errno(&err), Some(libc_enoent()), "{err}");
    assert!(err.to_string().contains("table inet nope"), "{err}");

    // After all that, the one element applied at the start is still the only one.
    let text = ns
        .exec(&["nft", "list", "set", "inet", "calico", "a4-x"])
        .unwrap();
    assert!(text.contains("elements = { 10.0.0.1 }"), "{text}");
}

fn libc_enoent() -> i32 {
    std::io::Error::from(std::io::ErrorKind::NotFound)
        .raw_os_error()
        .unwrap_or(2)
}

/// One workload with an allow-from-set profile and an IP set holding `members`.
fn ruleset(members: &[&str]) -> calico_nft::Ruleset {
    compile(
        &calico_nft::synthetic::one_workload(members),
        &NftConfig::default(),
    )
    .unwrap()
}

#[test]
fn the_manager_sends_membership_changes_over_netlink() {
    if !require_root_and_nft() {
        return;
    }
    let ns = TestNetns::new("felix-elem-mgr").unwrap();
    let metrics = NftMetrics::default();
    let mut m = PolicyManager::new(NftDriver::new("calico", Some(ns.path())), metrics.clone());
    // Both versions have members of both families: a set gaining its first member of a
    // family also gains that family's rules (calico-nft renders a rule only for families its
    // sets have members of), which is no longer a change of elements only.
    let (a, b) = (
        ruleset(&["10.0.0.1", "fd00::1"]),
        ruleset(&["10.0.0.2", "fd00::2"]),
    );
    m.set_target(a.clone());
    assert_eq!(m.sync().unwrap(), SyncAction::FullReplace);
    m.set_target(b.clone());
    assert_eq!(m.sync().unwrap(), SyncAction::Diff);
    assert_eq!(metrics.element_batches.get(), 1);
    assert_eq!(
        m.dataplane_mut().list_table("calico").unwrap(),
        Some(b.shape())
    );
    let text = ns
        .exec(&["nft", "list", "set", "inet", "calico", "a4-s/clients"])
        .unwrap();
    assert!(text.contains("elements = { 10.0.0.2 }"), "{text}");
    // Our netlink batch is one commit: the drift check trusts the generation and lists
    // nothing (it would find no drift anyway).
    assert!(!m.check_drift().unwrap());
    // Back, over netlink again.
    m.set_target(a.clone());
    assert_eq!(m.sync().unwrap(), SyncAction::Diff);
    assert_eq!(metrics.element_batches.get(), 2);
    assert_eq!(
        m.dataplane_mut().list_table("calico").unwrap(),
        Some(a.shape())
    );
}

/// Element counts of `set` as the kernel lists them.
fn count(d: &mut NftDriver, set: &str) -> usize {
    d.list_table("calico").unwrap().unwrap().sets[set]
}

#[test]
fn large_changes_span_several_messages_or_go_through_nft() {
    let Some((_ns, mut d)) = setup() else {
        return;
    };
    let many = |n: u32, add: bool| -> Vec<ElementOp> {
        (0..n)
            .map(|i| {
                let a = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
                addr("a4-x", add, &a)
            })
            .collect()
    };
    // 5000 IPv4 elements (16 bytes of attributes each, 80 KB): more than one netlink
    // attribute can hold, so two messages of one batch (still one netlink send).
    d.apply_elements("calico", &many(5000, true)).unwrap();
    assert_eq!(count(&mut d, "a4-x"), 5000);
    // 10000 (160 KB): larger than one netlink send may be; handed to nft, same result.
    d.apply_elements("calico", &many(10000, true)).unwrap();
    assert_eq!(count(&mut d, "a4-x"), 10000);
    d.apply_elements("calico", &many(10000, false)).unwrap();
    assert_eq!(count(&mut d, "a4-x"), 0);
    // A multi-message batch whose last message fails: nothing of the earlier ones applies.
    let mut ops = many(5000, true);
    ops.push(addr("a4-nope", true, "10.0.0.1"));
    let err = d.apply_elements("calico", &ops).unwrap_err();
    assert!(err.to_string().contains("a4-nope"), "{err}");
    assert_eq!(count(&mut d, "a4-x"), 0);
}
