//! The machine-readable report of `ipam check -o` (`CheckReport` in `commands/ipam/check.go`)
//! and the report merging of `ipam release --from-report` (`mergeReports`).
//!
//! The JSON is Calico's, field for field (`json.MarshalIndent` with two spaces, map keys
//! sorted, `omitempty` where Go has it), so reports move between Calico's calicoctl and ours.
//! One addition, omitted when empty so Calico's tools ignore it: `deletedNodeAffinities`, the
//! block affinities of nodes that no longer exist.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use serde_json::{Map, Value, json};

/// One allocated address, cross-referenced with its users (`Allocation`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocation {
    pub ip: String,
    pub handle: String,
    pub sequence_number: Option<u64>,
    pub pod: String,
    pub namespace: String,
    pub node: String,
    pub type_: String,
    pub creation_timestamp: String,
    pub in_use: bool,
    pub borrowed: bool,
    pub cooling_down: bool,
    /// `None` is Go's nil slice (`"owners": null`).
    pub owners: Option<Vec<String>>,
}

/// A handle with no allocation (`HandleInfo`; its fields have no JSON tags in Go).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandleInfo {
    pub id: String,
    /// Kubernetes UID; always `None` on etcd and the embedded store.
    pub uid: Option<String>,
    /// The handle key's mod revision when the report was made.
    pub revision: String,
}

/// A block affinity of a node that no longer exists (our addition).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeAffinity {
    pub node: String,
    pub block: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub version: String,
    pub cluster_guid: String,
    pub datastore_locked: bool,
    pub cluster_info_revision: String,
    pub cluster_type: String,
    pub allocations: BTreeMap<String, Vec<Allocation>>,
    pub leaked_handles: Vec<HandleInfo>,
    pub deleted_node_affinities: Vec<NodeAffinity>,
}

fn put_str(m: &mut Map<String, Value>, k: &str, v: &str) {
    if !v.is_empty() {
        m.insert(k.into(), Value::String(v.into()));
    }
}

impl Allocation {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("ip".into(), json!(self.ip));
        put_str(&mut m, "handle", &self.handle);
        if let Some(s) = self.sequence_number {
            m.insert("sequenceNumber".into(), json!(s));
        }
        put_str(&mut m, "pod", &self.pod);
        put_str(&mut m, "namespace", &self.namespace);
        put_str(&mut m, "node", &self.node);
        put_str(&mut m, "type", &self.type_);
        put_str(&mut m, "creationTimestamp", &self.creation_timestamp);
        m.insert("inUse".into(), json!(self.in_use));
        if self.borrowed {
            m.insert("borrowed".into(), json!(true));
        }
        if self.cooling_down {
            m.insert("coolingDown".into(), json!(true));
        }
        m.insert("owners".into(), json!(self.owners));
        Value::Object(m)
    }

    fn from_json(v: &Value) -> anyhow::Result<Allocation> {
        let s = |k: &str| -> anyhow::Result<String> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(anyhow!("field {k} is {other}, not a string")),
            }
        };
        let b = |k: &str| -> anyhow::Result<bool> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(anyhow!("field {k} is {other}, not a boolean")),
            }
        };
        let sequence_number = match v.get("sequenceNumber") {
            None | Some(Value::Null) => None,
            Some(n) => Some(
                n.as_u64()
                    .ok_or_else(|| anyhow!("field sequenceNumber is {n}, not a number"))?,
            ),
        };
        let owners = match v.get("owners") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|o| o.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| anyhow!("field owners holds a non-string"))?,
            ),
            Some(other) => return Err(anyhow!("field owners is {other}, not a list")),
        };
        let ip = s("ip")?;
        if ip.is_empty() {
            return Err(anyhow!("an allocation has no ip"));
        }
        Ok(Allocation {
            ip,
            handle: s("handle")?,
            sequence_number,
            pod: s("pod")?,
            namespace: s("namespace")?,
            node: s("node")?,
            type_: s("type")?,
            creation_timestamp: s("creationTimestamp")?,
            in_use: b("inUse")?,
            borrowed: b("borrowed")?,
            cooling_down: b("coolingDown")?,
            owners,
        })
    }
}

impl CheckReport {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("version".into(), json!(self.version));
        m.insert("clusterGUID".into(), json!(self.cluster_guid));
        m.insert("datastoreLocked".into(), json!(self.datastore_locked));
        m.insert(
            "clusterInformationRevision".into(),
            json!(self.cluster_info_revision),
        );
        m.insert("clusterType".into(), json!(self.cluster_type));
        let mut allocs = Map::new();
        for (ip, list) in &self.allocations {
            allocs.insert(
                ip.clone(),
                Value::Array(list.iter().map(Allocation::to_json).collect()),
            );
        }
        m.insert("allocations".into(), Value::Object(allocs));
        if !self.leaked_handles.is_empty() {
            let hs: Vec<Value> = self
                .leaked_handles
                .iter()
                .map(|h| json!({"ID": h.id, "UID": h.uid, "Revision": h.revision}))
                .collect();
            m.insert("leakedHandles".into(), Value::Array(hs));
        }
        if !self.deleted_node_affinities.is_empty() {
            let a: Vec<Value> = self
                .deleted_node_affinities
                .iter()
                .map(|a| json!({"node": a.node, "block": a.block}))
                .collect();
            m.insert("deletedNodeAffinities".into(), Value::Array(a));
        }
        Value::Object(m)
    }

    /// Go's `json.MarshalIndent(r, "", "  ")` (no final newline).
    pub fn to_text(&self) -> String {
        crate::output::to_json(&self.to_json())
            .trim_end_matches('\n')
            .to_string()
    }

    /// Reads a report; unknown fields are ignored, as Go's decoder does.
    pub fn parse(text: &str) -> anyhow::Result<CheckReport> {
        let v: Value = serde_json::from_str(text)?;
        let obj = v
            .as_object()
            .ok_or_else(|| anyhow!("a report is a JSON object"))?;
        let s = |k: &str| -> String {
            obj.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut r = CheckReport {
            version: s("version"),
            cluster_guid: s("clusterGUID"),
            datastore_locked: obj
                .get("datastoreLocked")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            cluster_info_revision: s("clusterInformationRevision"),
            cluster_type: s("clusterType"),
            ..Default::default()
        };
        if let Some(Value::Object(a)) = obj.get("allocations") {
            for (ip, list) in a {
                let list = list
                    .as_array()
                    .ok_or_else(|| anyhow!("allocations of {ip} are not a list"))?;
                let mut out = Vec::new();
                for item in list {
                    out.push(
                        Allocation::from_json(item)
                            .with_context(|| format!("allocation of {ip}"))?,
                    );
                }
                r.allocations.insert(ip.clone(), out);
            }
        }
        if let Some(Value::Array(hs)) = obj.get("leakedHandles") {
            for h in hs {
                let id = h
                    .get("ID")
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("a leaked handle has no ID"))?;
                r.leaked_handles.push(HandleInfo {
                    id: id.to_string(),
                    uid: h.get("UID").and_then(Value::as_str).map(str::to_string),
                    revision: h
                        .get("Revision")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                });
            }
        }
        if let Some(Value::Array(list)) = obj.get("deletedNodeAffinities") {
            for a in list {
                let f = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
                match (f("node"), f("block")) {
                    (Some(node), Some(block)) => {
                        r.deleted_node_affinities.push(NodeAffinity { node, block })
                    }
                    _ => return Err(anyhow!("a deletedNodeAffinities entry lacks node or block")),
                }
            }
        }
        Ok(r)
    }
}

/// What a release should free: addresses (with the handle and sequence number they had), the
/// leaked handles, and the deleted nodes' affinities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    /// address -> (handle, sequence number)
    pub ips: BTreeMap<String, (String, Option<u64>)>,
    pub handles: BTreeMap<String, HandleInfo>,
    pub affinities: Vec<NodeAffinity>,
}

/// `mergeReports`: only what every report calls leaked — addresses neither in use nor cooling
/// down in all of them (the last report's handle and sequence number win), and handles leaked
/// at the same revision in all of them. Deleted nodes' affinities likewise must be in all.
pub fn merge_reports(reports: &[CheckReport]) -> Merged {
    let mut ips: Option<BTreeMap<String, (String, Option<u64>)>> = None;
    let mut handles: Option<BTreeMap<String, HandleInfo>> = None;
    let mut affs: Option<Vec<NodeAffinity>> = None;
    for r in reports {
        let mut merged = BTreeMap::new();
        for list in r.allocations.values() {
            for a in list {
                if a.in_use || a.cooling_down {
                    continue;
                }
                if let Some(prev) = &ips
                    && !prev.contains_key(&a.ip)
                {
                    continue;
                }
                merged.insert(a.ip.clone(), (a.handle.clone(), a.sequence_number));
            }
        }
        ips = Some(merged);
        let mut mh = BTreeMap::new();
        for h in &r.leaked_handles {
            match &handles {
                None => {
                    mh.insert(h.id.clone(), h.clone());
                }
                Some(prev) => {
                    if prev.get(&h.id).is_some_and(|o| o.revision == h.revision) {
                        mh.insert(h.id.clone(), h.clone());
                    }
                }
            }
        }
        handles = Some(mh);
        let mut ma: Vec<NodeAffinity> = r
            .deleted_node_affinities
            .iter()
            .filter(|a| affs.as_ref().is_none_or(|p| p.contains(a)))
            .cloned()
            .collect();
        ma.sort();
        ma.dedup();
        affs = Some(ma);
    }
    Merged {
        ips: ips.unwrap_or_default(),
        handles: handles.unwrap_or_default(),
        affinities: affs.unwrap_or_default(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn alloc(ip: &str, in_use: bool, seq: u64) -> Allocation {
        Allocation {
            ip: ip.into(),
            handle: format!("h-{ip}"),
            sequence_number: Some(seq),
            node: "n1".into(),
            in_use,
            owners: if in_use {
                Some(vec!["Workload(ns/p)".into()])
            } else {
                None
            },
            ..Default::default()
        }
    }

    fn report(allocs: &[Allocation], handles: &[(&str, &str)]) -> CheckReport {
        let mut r = CheckReport {
            version: "v0.1.0".into(),
            cluster_guid: "g".into(),
            cluster_info_revision: "7".into(),
            ..Default::default()
        };
        for a in allocs {
            r.allocations
                .entry(a.ip.clone())
                .or_default()
                .push(a.clone());
        }
        for (id, rev) in handles {
            r.leaked_handles.push(HandleInfo {
                id: id.to_string(),
                uid: None,
                revision: rev.to_string(),
            });
        }
        r
    }

    #[test]
    fn json_is_calicos_shape_and_round_trips() {
        let mut r = report(
            &[alloc("10.0.0.1", true, 3), alloc("10.0.0.2", false, 0)],
            &[("x", "12")],
        );
        r.allocations.get_mut("10.0.0.2").unwrap()[0].borrowed = true;
        let text = r.to_text();
        let want = r#"{
  "version": "v0.1.0",
  "clusterGUID": "g",
  "datastoreLocked": false,
  "clusterInformationRevision": "7",
  "clusterType": "",
  "allocations": {
    "10.0.0.1": [
      {
        "ip": "10.0.0.1",
        "handle": "h-10.0.0.1",
        "sequenceNumber": 3,
        "node": "n1",
        "inUse": true,
        "owners": [
          "Workload(ns/p)"
        ]
      }
    ],
    "10.0.0.2": [
      {
        "ip": "10.0.0.2",
        "handle": "h-10.0.0.2",
        "sequenceNumber": 0,
        "node": "n1",
        "inUse": false,
        "borrowed": true,
        "owners": null
      }
    ]
  },
  "leakedHandles": [
    {
      "ID": "x",
      "UID": null,
      "Revision": "12"
    }
  ]
}"#;
        assert_eq!(text, want);
        assert_eq!(CheckReport::parse(&text).unwrap(), r);
    }

    #[test]
    fn merge_keeps_only_what_every_report_calls_leaked() {
        let r1 = report(
            &[
                alloc("10.0.0.1", false, 1),
                alloc("10.0.0.2", false, 1),
                alloc("10.0.0.3", true, 1),
            ],
            &[("a", "5"), ("b", "6")],
        );
        let r2 = report(
            &[
                alloc("10.0.0.1", false, 2),
                alloc("10.0.0.2", true, 1),
                alloc("10.0.0.4", false, 1),
            ],
            &[("a", "5"), ("b", "9")],
        );
        let m = merge_reports(&[r1.clone(), r2]);
        assert_eq!(m.ips.keys().collect::<Vec<_>>(), vec!["10.0.0.1"]);
        assert_eq!(m.ips["10.0.0.1"].1, Some(2));
        assert_eq!(m.handles.keys().collect::<Vec<_>>(), vec!["a"]);
        let m = merge_reports(&[r1]);
        assert_eq!(m.ips.len(), 2);
        assert_eq!(m.handles.len(), 2);
    }

    #[test]
    fn bad_reports_are_refused_with_the_reason() {
        assert!(CheckReport::parse("[]").is_err());
        let e =
            CheckReport::parse(r#"{"allocations":{"1.2.3.4":[{"ip":"1.2.3.4","inUse":"yes"}]}}"#)
                .unwrap_err();
        assert!(format!("{e:#}").contains("inUse"), "{e:#}");
    }
}
