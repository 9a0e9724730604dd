//! The shape of a table: its chains with their rule counts, its sets and maps with their
//! element counts. It is what a driver compares between the ruleset it applied and what the
//! kernel holds (`nft -j list table inet calico`) to detect drift: another program flushing
//! the table, deleting a chain or emptying a set changes the shape.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::NftError;

/// Chains (name → number of rules), named sets and named maps (name → number of elements) of
/// one table. Anonymous sets (`{ a, b }` inside a rule) are part of their rule and not counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableShape {
    pub chains: BTreeMap<String, usize>,
    pub sets: BTreeMap<String, usize>,
    pub maps: BTreeMap<String, usize>,
}

impl TableShape {
    /// Reads the shape of table `inet <table>` from the JSON that `nft -j list table inet
    /// <table>` (or `nft -j list ruleset`) prints. Objects of other tables or families are
    /// ignored; objects nft adds that have no shape (metainfo, counters, flowtables) too.
    /// Missing table → [`NftError::NoSuchTable`].
    pub fn from_nft_json(json: &str, table: &str) -> Result<TableShape, NftError> {
        let doc: Value =
            serde_json::from_str(json).map_err(|e| NftError::BadJson(format!("not JSON: {e}")))?;
        let items = doc
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or_else(|| NftError::BadJson("no top-level \"nftables\" array".into()))?;
        let mut shape = TableShape::default();
        let mut found = false;
        for (i, item) in items.iter().enumerate() {
            let obj = item
                .as_object()
                .ok_or_else(|| NftError::BadJson(format!("item {i} is not an object")))?;
            for (kind, body) in obj {
                let kind = kind.as_str();
                match kind {
                    "table" if is_ours(body, "name", table) => found = true,
                    "chain" if is_ours(body, "table", table) => {
                        let name = str_field(body, "name", i, kind)?;
                        shape.chains.entry(name.to_string()).or_insert(0);
                    }
                    "rule" if is_ours(body, "table", table) => {
                        let chain = str_field(body, "chain", i, kind)?;
                        *shape.chains.entry(chain.to_string()).or_insert(0) += 1;
                    }
                    "set" | "map" if is_ours(body, "table", table) => {
                        let name = str_field(body, "name", i, kind)?;
                        let n = match body.get("elem") {
                            None => 0,
                            Some(Value::Array(a)) => a.len(),
                            Some(_) => {
                                return Err(NftError::BadJson(format!(
                                    "{kind} {name}: \"elem\" is not an array"
                                )));
                            }
                        };
                        let dest = if kind == "set" {
                            &mut shape.sets
                        } else {
                            &mut shape.maps
                        };
                        dest.insert(name.to_string(), n);
                    }
                    _ => {}
                }
            }
        }
        if !found {
            return Err(NftError::NoSuchTable(table.to_string()));
        }
        Ok(shape)
    }

    /// Total number of rules over all chains.
    pub fn rule_count(&self) -> usize {
        self.chains.values().sum()
    }
}

/// Whether an object belongs to table `inet <table>` (`key` is where its table name is:
/// `name` for the table itself, `table` for everything in it).
fn is_ours(body: &Value, key: &str, table: &str) -> bool {
    body.get("family").and_then(Value::as_str) == Some("inet")
        && body.get(key).and_then(Value::as_str) == Some(table)
}

fn str_field<'a>(body: &'a Value, field: &str, i: usize, kind: &str) -> Result<&'a str, NftError> {
    body.get(field).and_then(Value::as_str).ok_or_else(|| {
        NftError::BadJson(format!("item {i} ({kind}) has no string field \"{field}\""))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Captured from nft 1.0.6: `nft -j list table inet calico` after loading a table with a
    /// hash set, an interval set, a concatenated set, an empty set, a verdict map, two empty
    /// chains... (inside a throwaway network namespace).
    const LISTING: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "calico", "handle": 1}}, {"set": {"family": "inet", "name": "s1", "table": "calico", "type": "ipv4_addr", "handle": 4, "elem": ["10.0.0.1", "10.0.0.2"]}}, {"set": {"family": "inet", "name": "n1", "table": "calico", "type": "ipv4_addr", "handle": 5, "flags": ["interval"], "elem": [{"prefix": {"addr": "10.0.0.0", "len": 24}}, {"prefix": {"addr": "10.1.0.0", "len": 16}}]}}, {"set": {"family": "inet", "name": "np", "table": "calico", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 6, "elem": [{"concat": ["10.0.0.1", "tcp", 80]}]}}, {"set": {"family": "inet", "name": "e", "table": "calico", "type": "ipv6_addr", "handle": 7}}, {"map": {"family": "inet", "name": "from-wl", "table": "calico", "type": "ifname", "handle": 8, "map": "verdict", "elem": [["cali1", {"jump": {"target": "fw-a"}}], ["cali2", {"jump": {"target": "fw-b"}}]]}}, {"chain": {"family": "inet", "table": "calico", "name": "fw-a", "handle": 1}}, {"chain": {"family": "inet", "table": "calico", "name": "fw-b", "handle": 2}}, {"chain": {"family": "inet", "table": "calico", "name": "forward", "handle": 3, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}, {"chain": {"family": "inet", "table": "calico", "name": "empty", "handle": 14}}, {"rule": {"family": "inet", "table": "calico", "chain": "fw-a", "handle": 9, "expr": [{"accept": null}]}}, {"rule": {"family": "inet", "table": "calico", "chain": "fw-b", "handle": 10, "expr": [{"drop": null}]}}, {"rule": {"family": "inet", "table": "calico", "chain": "forward", "handle": 11, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "calico", "chain": "forward", "handle": 12, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "calico", "chain": "forward", "handle": 13, "expr": [{"vmap": {"key": {"meta": {"key": "iifname"}}, "data": "@from-wl"}}]}}]}"#;

    #[test]
    fn reads_chains_sets_and_maps() {
        let s = TableShape::from_nft_json(LISTING, "calico").unwrap();
        let chains: Vec<(&str, usize)> = s.chains.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            chains,
            vec![("empty", 0), ("forward", 3), ("fw-a", 1), ("fw-b", 1)]
        );
        let sets: Vec<(&str, usize)> = s.sets.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(sets, vec![("e", 0), ("n1", 2), ("np", 1), ("s1", 2)]);
        assert_eq!(s.maps.len(), 1);
        assert_eq!(s.maps["from-wl"], 2);
        assert_eq!(s.rule_count(), 5);
    }

    #[test]
    fn other_tables_and_families_are_ignored() {
        let json = r#"{"nftables": [
            {"table": {"family": "ip", "name": "calico", "handle": 1}},
            {"chain": {"family": "ip", "table": "calico", "name": "x", "handle": 1}},
            {"table": {"family": "inet", "name": "other", "handle": 2}},
            {"chain": {"family": "inet", "table": "other", "name": "y", "handle": 1}},
            {"rule": {"family": "inet", "table": "other", "chain": "y", "handle": 2, "expr": []}},
            {"set": {"family": "inet", "table": "other", "name": "s", "handle": 3, "elem": ["1.2.3.4"]}},
            {"table": {"family": "inet", "name": "calico", "handle": 3}},
            {"chain": {"family": "inet", "table": "calico", "name": "z", "handle": 1}}
        ]}"#;
        let s = TableShape::from_nft_json(json, "calico").unwrap();
        assert_eq!(s.chains.keys().collect::<Vec<_>>(), vec!["z"]);
        assert!(s.sets.is_empty());
        assert!(s.maps.is_empty());
        let o = TableShape::from_nft_json(json, "other").unwrap();
        assert_eq!(o.chains["y"], 1);
        assert_eq!(o.sets["s"], 1);
    }

    #[test]
    fn missing_table_is_an_error() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}]}"#;
        assert_eq!(
            TableShape::from_nft_json(json, "calico"),
            Err(NftError::NoSuchTable("calico".into()))
        );
    }

    #[test]
    fn bad_json_is_an_error_naming_the_problem() {
        let e = TableShape::from_nft_json("not json", "calico").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        let e = TableShape::from_nft_json(r#"{"x": 1}"#, "calico").unwrap_err();
        assert!(e.to_string().contains("nftables"), "{e}");
        let e = TableShape::from_nft_json(r#"{"nftables": [1]}"#, "calico").unwrap_err();
        assert!(e.to_string().contains("item 0"), "{e}");
        let e = TableShape::from_nft_json(
            r#"{"nftables": [{"rule": {"family": "inet", "table": "calico"}}]}"#,
            "calico",
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"chain\""), "{e}");
        let e = TableShape::from_nft_json(
            r#"{"nftables": [{"set": {"family": "inet", "table": "calico", "name": "s", "elem": 3}}]}"#,
            "calico",
        )
        .unwrap_err();
        assert!(e.to_string().contains("set s"), "{e}");
    }
}
