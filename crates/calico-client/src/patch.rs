//! Patches for `calicoctl patch`: JSON merge patch (RFC 7386, also what a strategic merge patch
//! amounts to for Calico's types, which declare no list merge keys) and JSON patch (RFC 6902).

use serde_json::Value;

use crate::error::ClientError;

/// A parsed patch.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    /// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
    Merge(Value),
    /// RFC 6902: a list of operations applied in order, all or nothing.
    Json(Vec<Value>),
}

fn bad(msg: impl Into<String>) -> ClientError {
    ClientError::Config(msg.into())
}

impl Patch {
    /// Parses `text` as a patch of `patch_type` (`strategic` and `merge` are merge patches,
    /// `json` is a JSON patch), as calicoctl's `--type`.
    pub fn parse(patch_type: &str, text: &str) -> Result<Patch, ClientError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("patch is not valid JSON: {e}")))?;
        match patch_type {
            "strategic" | "merge" => {
                if !v.is_object() {
                    return Err(bad("a merge patch must be a JSON object"));
                }
                Ok(Patch::Merge(v))
            }
            "json" => match v {
                Value::Array(ops) => Ok(Patch::Json(ops)),
                _ => Err(bad("a JSON patch must be a JSON array of operations")),
            },
            other => Err(bad(format!(
                "unknown patch type {other:?}; expected strategic, merge or json"
            ))),
        }
    }

    /// Applies the patch to `doc`.
    pub fn apply(&self, doc: Value) -> Result<Value, ClientError> {
        match self {
            Patch::Merge(p) => Ok(merge_patch(doc, p)),
            Patch::Json(ops) => {
                let mut doc = doc;
                for (i, op) in ops.iter().enumerate() {
                    json_patch_op(&mut doc, op)
                        .map_err(|e| bad(format!("JSON patch operation {i}: {e}")))?;
                }
                Ok(doc)
            }
        }
    }
}

/// RFC 7386 section 2.
pub fn merge_patch(target: Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut t = match target {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            let cur = t.remove(k).unwrap_or(Value::Null);
            t.insert(k.clone(), merge_patch(cur, v));
        }
    }
    Value::Object(t)
}

/// Splits an RFC 6901 pointer into unescaped tokens.
fn pointer_tokens(ptr: &str) -> Result<Vec<String>, String> {
    if ptr.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = ptr.strip_prefix('/') else {
        return Err(format!("path {ptr:?} must start with '/'"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn array_index(tok: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && tok == "-" {
        return Ok(len);
    }
    let i: usize = tok
        .parse()
        .map_err(|_| format!("{tok:?} is not an array index"))?;
    let max = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if i > max || (!allow_end && len == 0) {
        return Err(format!("index {i} out of range"));
    }
    Ok(i)
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| format!("path segment {t:?} not found"))?,
            Value::Array(a) => {
                let i = array_index(t, a.len(), false)?;
                &mut a[i]
            }
            _ => return Err(format!("path segment {t:?} is inside a scalar")),
        };
    }
    Ok(cur)
}

fn get_at(doc: &Value, ptr: &str) -> Result<Value, String> {
    doc.pointer(ptr)
        .cloned()
        .ok_or_else(|| format!("path {ptr:?} not found"))
}

fn add_at(doc: &mut Value, ptr: &str, value: Value) -> Result<(), String> {
    let toks = pointer_tokens(ptr)?;
    let Some((last, parents)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = array_index(last, a.len(), true)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("cannot add at {ptr:?}: parent is a scalar")),
    }
}

fn remove_at(doc: &mut Value, ptr: &str) -> Result<Value, String> {
    let toks = pointer_tokens(ptr)?;
    let Some((last, parents)) = toks.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match parent_mut(doc, parents)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("path {ptr:?} not found")),
        Value::Array(a) => {
            let i = array_index(last, a.len(), false)?;
            Ok(a.remove(i))
        }
        _ => Err(format!("cannot remove {ptr:?}: parent is a scalar")),
    }
}

fn json_patch_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let field = |name: &str| -> Result<&str, String> {
        op.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("missing string field {name:?}"))
    };
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| "missing field \"value\"".to_string())
    };
    let path = field("path")?;
    match field("op")? {
        "add" => add_at(doc, path, value()?),
        "remove" => remove_at(doc, path).map(|_| ()),
        "replace" => {
            remove_at(doc, path)?;
            add_at(doc, path, value()?)
        }
        "move" => {
            let from = field("from")?;
            let v = remove_at(doc, from)?;
            add_at(doc, path, v)
        }
        "copy" => {
            let v = get_at(doc, field("from")?)?;
            add_at(doc, path, v)
        }
        "test" => {
            if get_at(doc, path)? == value()? {
                Ok(())
            } else {
                Err(format!("test failed: value at {path:?} differs"))
            }
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (t, p, want) in cases {
            assert_eq!(merge_patch(t.clone(), &p), want, "{t} + {p}");
        }
    }

    #[test]
    fn rfc6902_ops() {
        let doc = json!({"spec": {"nets": ["10.0.0.0/8"], "x": 1}});
        let p = Patch::parse(
            "json",
            r#"[{"op":"add","path":"/spec/nets/-","value":"11.0.0.0/8"},
                {"op":"replace","path":"/spec/x","value":2},
                {"op":"test","path":"/spec/x","value":2},
                {"op":"copy","from":"/spec/x","path":"/spec/y"},
                {"op":"move","from":"/spec/y","path":"/spec/z"},
                {"op":"remove","path":"/spec/nets/0"}]"#,
        )
        .unwrap();
        assert_eq!(
            p.apply(doc.clone()).unwrap(),
            json!({"spec": {"nets": ["11.0.0.0/8"], "x": 2, "z": 2}})
        );
        let bad = Patch::parse("json", r#"[{"op":"remove","path":"/spec/nope"}]"#).unwrap();
        assert!(bad.apply(doc.clone()).is_err());
        let failing_test =
            Patch::parse("json", r#"[{"op":"test","path":"/spec/x","value":5}]"#).unwrap();
        assert!(failing_test.apply(doc).is_err());
        assert!(Patch::parse("json", "{}").is_err());
        assert!(Patch::parse("merge", "[]").is_err());
        assert!(Patch::parse("weird", "{}").is_err());
    }
}
