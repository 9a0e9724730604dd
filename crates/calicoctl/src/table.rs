//! `get -o ps|wide|custom-columns=...`: the per-kind column sets and cell templates of
//! calicoctl's `registerResource` calls (`calicoctl/calicoctl/resourcemgr/*.go`), evaluated on
//! the JSON form of each object with Go's `%v` formatting of the typed field (`<nil>` for an
//! unset pointer, `false`/`0` for unset plain fields).

use serde_json::Value;

use crate::output::go_float;

/// Default and wide headings, and whether the kind can print a NAMESPACE column.
pub struct Columns {
    pub default: &'static [&'static str],
    pub wide: &'static [&'static str],
    pub namespaced: bool,
}

pub fn columns(kind: &str) -> Columns {
    let c = |default, wide, namespaced| Columns {
        default,
        wide,
        namespaced,
    };
    match kind {
        "BGPConfiguration" => c(
            &["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
            &["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
            false,
        ),
        "BGPFilter" => c(
            &[
                "NAME",
                "NUMEXPORTV4",
                "NUMIMPORTV4",
                "NUMEXPORTV6",
                "NUMIMPORTV6",
            ],
            &[
                "NAME",
                "NUMEXPORTV4",
                "NUMIMPORTV4",
                "NUMEXPORTV6",
                "NUMIMPORTV6",
            ],
            false,
        ),
        "BGPPeer" => c(
            &["NAME", "PEERIP", "NODE", "ASN"],
            &["NAME", "PEERIP", "NODE", "ASN"],
            false,
        ),
        "ClusterInformation" => c(
            &[
                "NAME",
                "CLUSTERGUID",
                "CLUSTERTYPE",
                "CALICOVERSION",
                "DATASTOREREADY",
            ],
            &[
                "NAME",
                "CLUSTERGUID",
                "CLUSTERTYPE",
                "CALICOVERSION",
                "DATASTOREREADY",
            ],
            false,
        ),
        "GlobalNetworkPolicy" | "StagedGlobalNetworkPolicy" => c(
            &["NAME", "TIER"],
            &["NAME", "TIER", "ORDER", "SELECTOR"],
            false,
        ),
        "GlobalNetworkSet" => c(&["NAME"], &["NAME", "NETS"], false),
        "HostEndpoint" => c(
            &["NAME", "NODE"],
            &["NAME", "NODE", "INTERFACE", "IPS", "PROFILES"],
            false,
        ),
        "IPAMConfiguration" => c(
            &["NAME", "STRICTAFFINITY", "AUTOALLOCATEBLOCKS"],
            &[
                "NAME",
                "STRICTAFFINITY",
                "AUTOALLOCATEBLOCKS",
                "MAXBLOCKSPERHOST",
            ],
            false,
        ),
        "IPPool" => c(
            &["NAME", "CIDR", "SELECTOR"],
            &[
                "NAME",
                "CIDR",
                "NAT",
                "IPIPMODE",
                "VXLANMODE",
                "DISABLED",
                "DISABLEBGPEXPORT",
                "SELECTOR",
                "ASSIGNMENTMODE",
            ],
            false,
        ),
        "IPReservation" => c(&["NAME"], &["NAME", "CIDRS"], false),
        "NetworkPolicy" | "StagedNetworkPolicy" => c(
            &["NAME", "TIER"],
            &["NAME", "TIER", "ORDER", "SELECTOR"],
            true,
        ),
        "NetworkSet" => c(&["NAME"], &["NAME", "NETS"], true),
        "Node" => c(&["NAME"], &["NAME", "ASN", "IPV4", "IPV6"], false),
        "CalicoNodeStatus" => c(&["NAME", "NODE"], &["NAME", "NODE", "CLASSES"], false),
        "Profile" => c(&["NAME"], &["NAME", "LABELS"], false),
        "StagedKubernetesNetworkPolicy" => c(&["NAME"], &["NAME", "PODSELECTOR"], true),
        "Tier" => c(&["NAME", "ORDER"], &["NAME", "ORDER"], false),
        "WorkloadEndpoint" => c(
            &["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"],
            &[
                "NAME",
                "WORKLOAD",
                "NODE",
                "NETWORKS",
                "INTERFACE",
                "PROFILES",
                "NATS",
            ],
            true,
        ),
        // FelixConfiguration, KubeControllersConfiguration and anything new.
        _ => c(&["NAME"], &["NAME"], false),
    }
}

/// Values a cell may need from outside the object (calicoctl's `config "asnumber"`).
pub struct CellContext {
    /// The cluster AS number: BGPConfiguration `default`'s, 64512 when unset, `unknown` when
    /// it cannot be read.
    pub default_as: String,
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    (!cur.is_null()).then_some(cur)
}

/// Go's `%v` of a JSON value: strings bare, numbers Go-formatted, lists `[a b]`, objects
/// `{v1 v2}` (a struct's fields in order).
pub fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if n.is_f64() {
                n.as_f64().map(go_float).unwrap_or_else(|| n.to_string())
            } else {
                n.to_string()
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.values().map(go_value).collect::<Vec<_>>().join(" ")
        ),
    }
}

fn s(v: &Value, path: &[&str]) -> String {
    at(v, path).map(go_value).unwrap_or_default()
}

fn or(v: &Value, path: &[&str], unset: &str) -> String {
    at(v, path)
        .map(go_value)
        .unwrap_or_else(|| unset.to_string())
}

/// A `*float64` field (policy and tier `order`): Go prints it as a float even when integral.
fn float(v: &Value, path: &[&str]) -> String {
    match at(v, path) {
        Some(n) => n.as_f64().map(go_float).unwrap_or_else(|| go_value(n)),
        None => "<nil>".into(),
    }
}

fn len(v: &Value, path: &[&str]) -> String {
    at(v, path)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
        .to_string()
}

/// calicoctl's `join`/`joinAndTruncate`: list items (or sorted `k=v` map entries) joined by
/// `sep`, cut to `max` characters with `...` when `max > 0`.
fn join(v: &Value, path: &[&str], sep: &str, max: usize) -> String {
    let items: Vec<String> = match at(v, path) {
        None => return String::new(),
        Some(Value::Array(a)) => a.iter().map(go_value).collect(),
        Some(Value::Object(m)) => {
            let mut kv: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", go_value(v)))
                .collect();
            kv.sort();
            kv
        }
        Some(other) => vec![go_value(other)],
    };
    let mut out = String::new();
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(it);
        if max > 0 && out.len() > max {
            let mut cut = max.saturating_sub(3);
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("...");
            break;
        }
    }
    out
}

/// The cell under `heading` for object `obj` of `kind`; `None` for a heading the kind does not
/// know.
pub fn cell(kind: &str, heading: &str, obj: &Value, ctx: &CellContext) -> Option<String> {
    let name = || s(obj, &["metadata", "name"]);
    let out = match (kind, heading) {
        (_, "NAME") => name(),
        (k, "NAMESPACE") if columns(k).namespaced => s(obj, &["metadata", "namespace"]),
        ("BGPConfiguration", "LOGSEVERITY") => s(obj, &["spec", "logSeverityScreen"]),
        ("BGPConfiguration", "MESHENABLED") => or(obj, &["spec", "nodeToNodeMeshEnabled"], "-"),
        ("BGPConfiguration", "ASNUMBER") => or(obj, &["spec", "asNumber"], "-"),
        ("BGPFilter", "NUMEXPORTV4") => len(obj, &["spec", "exportV4"]),
        ("BGPFilter", "NUMIMPORTV4") => len(obj, &["spec", "importV4"]),
        ("BGPFilter", "NUMEXPORTV6") => len(obj, &["spec", "exportV6"]),
        ("BGPFilter", "NUMIMPORTV6") => len(obj, &["spec", "importV6"]),
        ("BGPPeer", "PEERIP") => s(obj, &["spec", "peerIP"]),
        ("BGPPeer", "NODE") => {
            let node = s(obj, &["spec", "node"]);
            let sel = s(obj, &["spec", "nodeSelector"]);
            match (node.is_empty(), sel.is_empty()) {
                (false, _) => node,
                (true, true) => "(global)".into(),
                (true, false) => sel,
            }
        }
        ("BGPPeer", "ASN") => or(obj, &["spec", "asNumber"], "0"),
        ("ClusterInformation", "CLUSTERGUID") => s(obj, &["spec", "clusterGUID"]),
        ("ClusterInformation", "CLUSTERTYPE") => s(obj, &["spec", "clusterType"]),
        ("ClusterInformation", "CALICOVERSION") => s(obj, &["spec", "calicoVersion"]),
        ("ClusterInformation", "DATASTOREREADY") => or(obj, &["spec", "datastoreReady"], "<nil>"),
        (
            "GlobalNetworkPolicy"
            | "StagedGlobalNetworkPolicy"
            | "NetworkPolicy"
            | "StagedNetworkPolicy",
            h,
        ) => match h {
            "TIER" => s(obj, &["spec", "tier"]),
            "ORDER" => float(obj, &["spec", "order"]),
            "SELECTOR" => s(obj, &["spec", "selector"]),
            _ => return None,
        },
        ("GlobalNetworkSet" | "NetworkSet", "NETS") => join(obj, &["spec", "nets"], ",", 80),
        ("HostEndpoint", "NODE") => s(obj, &["spec", "node"]),
        ("HostEndpoint", "INTERFACE") => s(obj, &["spec", "interfaceName"]),
        ("HostEndpoint", "IPS") => join(obj, &["spec", "expectedIPs"], ",", 0),
        ("HostEndpoint", "PROFILES") => join(obj, &["spec", "profiles"], ",", 0),
        ("IPAMConfiguration", "STRICTAFFINITY") => or(obj, &["spec", "strictAffinity"], "false"),
        ("IPAMConfiguration", "AUTOALLOCATEBLOCKS") => {
            or(obj, &["spec", "autoAllocateBlocks"], "false")
        }
        ("IPAMConfiguration", "MAXBLOCKSPERHOST") => or(obj, &["spec", "maxBlocksPerHost"], "0"),
        ("IPPool", h) => match h {
            "CIDR" => s(obj, &["spec", "cidr"]),
            "NAT" => or(obj, &["spec", "natOutgoing"], "false"),
            "IPIPMODE" => Some(s(obj, &["spec", "ipipMode"]))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "Never".into()),
            "VXLANMODE" => Some(s(obj, &["spec", "vxlanMode"]))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "Never".into()),
            "DISABLED" => or(obj, &["spec", "disabled"], "false"),
            "DISABLEBGPEXPORT" => or(obj, &["spec", "disableBGPExport"], "false"),
            "SELECTOR" => s(obj, &["spec", "nodeSelector"]),
            "ASSIGNMENTMODE" => or(obj, &["spec", "assignmentMode"], "<nil>"),
            _ => return None,
        },
        ("IPReservation", "CIDRS") => join(obj, &["spec", "reservedCIDRs"], ",", 80),
        ("Node", "ASN") => match at(obj, &["spec", "bgp"]) {
            None => String::new(),
            Some(bgp) => match at(bgp, &["asNumber"]) {
                Some(a) => go_value(a),
                None => format!("({})", ctx.default_as),
            },
        },
        ("Node", "IPV4") => s(obj, &["spec", "bgp", "ipv4Address"]),
        ("Node", "IPV6") => s(obj, &["spec", "bgp", "ipv6Address"]),
        ("CalicoNodeStatus", "NODE") => s(obj, &["spec", "node"]),
        ("CalicoNodeStatus", "CLASSES") => join(obj, &["spec", "classes"], ",", 0),
        ("Profile", "LABELS") => join(obj, &["spec", "labelsToApply"], ",", 0),
        ("StagedKubernetesNetworkPolicy", "PODSELECTOR") => at(obj, &["spec", "podSelector"])
            .map(Value::to_string)
            .unwrap_or_default(),
        ("Tier", "ORDER") => float(obj, &["spec", "order"]),
        ("WorkloadEndpoint", h) => match h {
            "NODE" => s(obj, &["spec", "node"]),
            "ORCHESTRATOR" => s(obj, &["spec", "orchestrator"]),
            "WORKLOAD" => {
                let w = s(obj, &["spec", "workload"]);
                if w.is_empty() {
                    s(obj, &["spec", "pod"])
                } else {
                    w
                }
            }
            "NETWORKS" => join(obj, &["spec", "ipNetworks"], ",", 0),
            "NATS" => join(obj, &["spec", "ipNATs"], ",", 0),
            "PROFILES" => join(obj, &["spec", "profiles"], ",", 0),
            "INTERFACE" => s(obj, &["spec", "interfaceName"]),
            _ => return None,
        },
        _ => return None,
    };
    Some(out)
}

/// Every heading `cell` knows for `kind` (for the "unknown heading" error).
pub fn known_headings(kind: &str) -> Vec<&'static str> {
    let c = columns(kind);
    let mut all: Vec<&'static str> = c.default.iter().chain(c.wide.iter()).copied().collect();
    if c.namespaced {
        all.push("NAMESPACE");
    }
    if kind == "WorkloadEndpoint" {
        all.push("ORCHESTRATOR");
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// Renders one table (calicoctl prints one per listed object or list), followed by the blank
/// line calicoctl prints after each.
pub fn render(
    kind: &str,
    objects: &[Value],
    headings: &[String],
    print_namespace: bool,
    ctx: &CellContext,
) -> Result<String, String> {
    let mut heads: Vec<String> = headings.to_vec();
    if print_namespace && columns(kind).namespaced {
        heads.insert(0, "NAMESPACE".into());
    }
    let mut rows = vec![heads.clone()];
    for obj in objects {
        let mut row = Vec::with_capacity(heads.len());
        for h in &heads {
            match cell(kind, h, obj, ctx) {
                Some(c) => row.push(c),
                None => {
                    return Err(format!(
                        "unknown heading {h}, valid values are: {}",
                        known_headings(kind).join(", ")
                    ));
                }
            }
        }
        rows.push(row);
    }
    let mut out = crate::output::tabwrite(&rows);
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> CellContext {
        CellContext {
            default_as: "64512".into(),
        }
    }

    #[test]
    fn ippool_wide_row() {
        let pool = json!({"metadata": {"name": "p"}, "spec": {"cidr": "10.0.0.0/16",
            "ipipMode": "Always", "natOutgoing": true, "nodeSelector": "all()",
            "assignmentMode": "Automatic"}});
        let heads: Vec<String> = columns("IPPool")
            .wide
            .iter()
            .map(|s| s.to_string())
            .collect();
        let row: Vec<String> = heads
            .iter()
            .map(|h| cell("IPPool", h, &pool, &ctx()).unwrap())
            .collect();
        assert_eq!(
            row,
            [
                "p",
                "10.0.0.0/16",
                "true",
                "Always",
                "Never",
                "false",
                "false",
                "all()",
                "Automatic"
            ]
        );
    }

    #[test]
    fn policy_namespace_column_and_orders() {
        let np = json!({"metadata": {"name": "a", "namespace": "prod"},
            "spec": {"tier": "default", "order": 100, "selector": "all()"}});
        let out = render(
            "NetworkPolicy",
            &[np],
            &["NAME".into(), "TIER".into()],
            true,
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            out,
            "NAMESPACE   NAME   TIER      \nprod        a      default   \n\n"
        );
        let tier = json!({"metadata": {"name": "default"}, "spec": {"order": 1000000}});
        assert_eq!(cell("Tier", "ORDER", &tier, &ctx()).unwrap(), "1e+06");
        let unordered = json!({"metadata": {"name": "x"}, "spec": {}});
        assert_eq!(
            cell("GlobalNetworkPolicy", "ORDER", &unordered, &ctx()).unwrap(),
            "<nil>"
        );
        assert!(render("IPPool", &[unordered], &["BOGUS".into()], false, &ctx()).is_err());
    }

    #[test]
    fn joins_and_peers() {
        let p = json!({"spec": {"labelsToApply": {"b": "2", "a": "1"}}});
        assert_eq!(cell("Profile", "LABELS", &p, &ctx()).unwrap(), "a=1,b=2");
        let long: Vec<String> = (0..20).map(|i| format!("10.0.{i}.0/24")).collect();
        let gns = json!({"spec": {"nets": long}});
        let nets = cell("GlobalNetworkSet", "NETS", &gns, &ctx()).unwrap();
        assert_eq!(nets.len(), 80);
        assert!(nets.ends_with("..."));
        let peer = json!({"spec": {"peerIP": "10.0.0.1", "asNumber": 64513}});
        assert_eq!(cell("BGPPeer", "NODE", &peer, &ctx()).unwrap(), "(global)");
        let wep =
            json!({"spec": {"ipNATs": [{"internalIP": "10.0.0.1", "externalIP": "1.2.3.4"}]}});
        assert_eq!(
            cell("WorkloadEndpoint", "NATS", &wep, &ctx()).unwrap(),
            "{10.0.0.1 1.2.3.4}"
        );
        let node = json!({"spec": {"bgp": {"ipv4Address": "10.0.0.5/24"}}});
        assert_eq!(cell("Node", "ASN", &node, &ctx()).unwrap(), "(64512)");
    }
}
