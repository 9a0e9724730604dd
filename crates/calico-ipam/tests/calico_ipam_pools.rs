//! Calico's pure pool-selection tables from `libcalico-go/lib/ipam/ipam_test.go`
//! ("determinePools tests IPV4/IPV6" and "determinePools with namespace selector"), as data.
//! The datastore-backed cases are in `calico_ipam_cases.rs`; the mapping is in
//! `CALICO_CASES.md`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use calico_ipam::Pool;
use calico_ipam::pools::{self, PoolQuery};
use ipnet::IpNet;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Calico's "determinePools tests IPV4/IPV6" tables (14 entries each) as data:
/// (pool1 enabled, pool2 enabled, pool1 selector, pool2 selector, request pool1, request
/// pool2, expected pools, expect error). The node has label `foo=bar`.
#[test]
fn determine_pools_tables() {
    type Row = (
        bool,
        bool,
        &'static str,
        &'static str,
        bool,
        bool,
        &'static [u8],
        bool,
    );
    let rows: &[Row] = &[
        (true, true, "", "", false, false, &[1, 2], false),
        (true, true, "", "", true, false, &[1], false),
        (
            true,
            true,
            "foo == \"bar\"",
            "foo != \"bar\"",
            false,
            false,
            &[1],
            false,
        ),
        (
            true,
            true,
            "foo == \"bar\"",
            "foo != \"bar\"",
            true,
            false,
            &[1],
            false,
        ),
        (
            true,
            true,
            "foo != \"bar\"",
            "all()",
            false,
            false,
            &[2],
            false,
        ),
        (true, true, "foo != \"bar\"", "", true, false, &[1], false),
        (true, true, "foo == \"bar\"", "", false, true, &[2], false),
        (false, true, "", "", false, false, &[2], false),
        (false, true, "", "", true, false, &[], true),
        (false, true, "", "", false, true, &[2], false),
        (false, true, "", "foo == \"bar\"", false, false, &[2], false),
        (false, true, "", "foo == \"bar\"", false, true, &[2], false),
        (false, true, "", "foo != \"bar\"", false, false, &[], false),
        (false, true, "", "foo != \"bar\"", false, true, &[2], false),
    ];
    let node = BTreeMap::from([("foo".to_string(), "bar".to_string())]);
    // Calico's CIDRs: pool 1 with a host bit set (v4) / in full notation (v6); requests use
    // them as written.
    for (version, written) in [
        (4u8, ["10.0.0.1/24", "20.0.0.0/24"]),
        (
            6u8,
            [
                "5001:0000:0000:001a:0000:0000:0000:0000/64",
                "5001:0:0:1b::/64",
            ],
        ),
    ] {
        let cidrs = written.map(|c| net(c).trunc());
        for (i, (en1, en2, sel1, sel2, req1, req2, want, want_err)) in rows.iter().enumerate() {
            let mk = |n: usize, en: bool, sel: &str| Pool {
                name: format!("pool{n}"),
                cidr: cidrs[n - 1],
                block_size: if version == 4 { 26 } else { 122 },
                disabled: !en,
                node_selector: if sel.is_empty() {
                    "all()".into()
                } else {
                    sel.into()
                },
                namespace_selector: String::new(),
                allowed_uses: vec!["Workload".into(), "Tunnel".into()],
                assignment_mode: "Automatic".into(),
            };
            let all = vec![mk(1, *en1, sel1), mk(2, *en2, sel2)];
            let mut requested = Vec::new();
            if *req1 {
                requested.push(net(written[0]));
            }
            if *req2 {
                requested.push(net(written[1]));
            }
            let q = PoolQuery {
                requested: &requested,
                node_labels: &node,
                namespace_labels: None,
                max_prefix_len: None,
            };
            match pools::determine_pools(&all, version, &q) {
                Ok((sel, _)) => {
                    assert!(!want_err, "v{version} row {i}: expected an error");
                    let got: Vec<IpNet> = sel.iter().map(|p| p.cidr).collect();
                    let want: Vec<IpNet> = want.iter().map(|n| cidrs[*n as usize - 1]).collect();
                    assert_eq!(got, want, "v{version} row {i}");
                }
                Err(e) => assert!(want_err, "v{version} row {i}: {e}"),
            }
        }
    }
}

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ns_pool(cidr: &str, node_sel: &str, ns_sel: &str) -> Pool {
    Pool {
        name: cidr.replace(['.', '/'], "-"),
        cidr: net(cidr),
        block_size: 26,
        disabled: false,
        node_selector: if node_sel.is_empty() {
            "all()".into()
        } else {
            node_sel.into()
        },
        namespace_selector: ns_sel.into(),
        allowed_uses: vec!["Workload".into(), "Tunnel".into()],
        assignment_mode: "Automatic".into(),
    }
}

/// `ipam_test.go` "determinePools with namespace selector": the 8-entry table and its 3 Its.
#[test]
fn determine_pools_namespace_selector_table() {
    type Row = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, &'static str)],
        bool,
    );
    let rows: &[Row] = &[
        ("", "", &[], &[], true),
        (
            "",
            "environment == 'production'",
            &[],
            &[("environment", "production")],
            true,
        ),
        (
            "",
            "environment == 'production'",
            &[],
            &[("environment", "development")],
            false,
        ),
        (
            "zone == 'us-west'",
            "environment == 'production'",
            &[("zone", "us-west")],
            &[("environment", "production")],
            true,
        ),
        (
            "zone == 'us-west'",
            "environment == 'production'",
            &[("zone", "us-west")],
            &[("environment", "development")],
            false,
        ),
        (
            "zone == 'us-west'",
            "environment == 'production'",
            &[("zone", "us-east")],
            &[("environment", "production")],
            false,
        ),
        (
            "",
            "environment == 'production' && tier == 'frontend'",
            &[],
            &[("environment", "production"), ("tier", "frontend")],
            true,
        ),
        (
            "",
            "environment == 'production' && tier == 'frontend'",
            &[],
            &[("environment", "production"), ("tier", "backend")],
            false,
        ),
    ];
    for (i, (node_sel, ns_sel, node, ns, want)) in rows.iter().enumerate() {
        let all = vec![ns_pool("10.0.0.0/24", node_sel, ns_sel)];
        let (node, ns) = (labels(node), labels(ns));
        let q = PoolQuery {
            requested: &[],
            node_labels: &node,
            namespace_labels: Some(&ns),
            max_prefix_len: Some(26),
        };
        let (sel, enabled) = pools::determine_pools(&all, 4, &q).unwrap();
        assert_eq!(enabled.len(), 1, "row {i}");
        assert_eq!(sel.len(), usize::from(*want), "row {i}");
    }
    // should handle multiple pools with different namespace selectors.
    let all = vec![
        ns_pool("10.0.0.0/24", "", "environment == 'production'"),
        ns_pool("10.1.0.0/24", "", "environment == 'development'"),
        ns_pool("10.2.0.0/24", "", ""),
    ];
    let (node, ns) = (labels(&[]), labels(&[("environment", "production")]));
    let q = PoolQuery {
        requested: &[],
        node_labels: &node,
        namespace_labels: Some(&ns),
        max_prefix_len: Some(26),
    };
    let (sel, enabled) = pools::determine_pools(&all, 4, &q).unwrap();
    assert_eq!(enabled.len(), 3);
    let got: BTreeSet<IpNet> = sel.iter().map(|p| p.cidr).collect();
    assert_eq!(
        got,
        BTreeSet::from([net("10.0.0.0/24"), net("10.2.0.0/24")])
    );
    // should handle invalid namespace selector syntax.
    let bad = vec![ns_pool("10.0.0.0/24", "", "invalid selector syntax [")];
    let empty = labels(&[]);
    let q = PoolQuery {
        namespace_labels: Some(&empty),
        ..q
    };
    assert!(pools::determine_pools(&bad, 4, &q).is_err());
    // should prioritize requested pools over namespace selectors.
    let one = vec![ns_pool("10.0.0.0/24", "", "environment == 'production'")];
    let dev = labels(&[("environment", "development")]);
    let req = [net("10.0.0.0/24")];
    let q = PoolQuery {
        requested: &req,
        namespace_labels: Some(&dev),
        ..q
    };
    let (sel, enabled) = pools::determine_pools(&one, 4, &q).unwrap();
    assert_eq!((sel.len(), enabled.len()), (1, 1));
    assert_eq!(sel[0].cidr, net("10.0.0.0/24"));
}
