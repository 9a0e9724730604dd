//! Output encodings that match calicoctl's byte for byte where it matters:
//!
//! - YAML as `sigs.k8s.io/yaml` writes it (JSON → go-yaml v2): map keys sorted, two-space
//!   indent, sequences inside mappings not indented, strings quoted only when a YAML 1.1 reader
//!   would take them for something else (double quotes: `"123"`, `"true"`, timestamps) or when
//!   they cannot be plain (single quotes: `'!has(a)'`, `'{"a":1}'`), long scalars folded at
//!   column 80 as libyaml folds them.
//! - JSON as Go's `json.MarshalIndent(v, "", "  ")`.
//! - Tables as Go's `text/tabwriter` with calicoctl's settings (minwidth 5, padding 3, every cell
//!   tab-terminated, so every column is padded).
//! - Numbers in table cells as Go's `%v` (`1e+06` for a float of one million).

use serde_json::Value;

// ---------------------------------------------------------------- YAML

/// Renders `v` as YAML the way calicoctl prints it.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => emit_map(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() => emit_seq(a, 0, &mut out),
        other => {
            out.push_str(&scalar(other, 2, 0));
            out.push('\n');
        }
    }
    out
}

fn sorted(m: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut kv: Vec<_> = m.iter().collect();
    kv.sort_by(|a, b| a.0.cmp(b.0));
    kv
}

fn emit_map(m: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (i, (k, v)) in sorted(m).into_iter().enumerate() {
        // The first key of a map that is a sequence item shares the `- ` line.
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&yaml_key(k));
        out.push(':');
        emit_value_after_key(v, indent, out);
    }
}

fn emit_value_after_key(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(m, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_seq(a, indent, out);
        }
        other => {
            out.push(' ');
            let col = current_column(out);
            out.push_str(&scalar(other, indent + 2, col));
            out.push('\n');
        }
    }
}

/// Characters written on the last line of `out` (libyaml's `emitter->column`).
fn current_column(out: &str) -> usize {
    out.rsplit('\n').next().map_or(0, |l| l.chars().count())
}

fn emit_seq(a: &[Value], indent: usize, out: &mut String) {
    for v in a {
        if !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => emit_map(m, indent + 2, out),
            Value::Array(inner) if !inner.is_empty() => emit_seq(inner, indent + 2, out),
            other => {
                let col = current_column(out);
                out.push_str(&scalar(other, indent + 2, col));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value, indent: usize, column: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => wrap(&yaml_string(s, indent), indent, column),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn number(n: &serde_json::Number) -> String {
    if n.is_f64() {
        n.as_f64().map(go_float).unwrap_or_else(|| n.to_string())
    } else {
        n.to_string()
    }
}

/// Whether go-yaml v2 would resolve the plain scalar `s` to something other than a string
/// (`resolve.go`): null/bool words of YAML 1.1, numbers, base-60 floats, timestamps.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N",
        "no", "No", "NO", "off", "Off", "OFF", "true", "True", "TRUE", "false", "False", "FALSE",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let plain = s.replace('_', "");
    let body = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    let is_int = !body.is_empty()
        && (body.chars().all(|c| c.is_ascii_digit())
            || body
                .strip_prefix("0x")
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            || body
                .strip_prefix("0b")
                .is_some_and(|b| !b.is_empty() && b.chars().all(|c| c == '0' || c == '1'))
            || body
                .strip_prefix("0o")
                .is_some_and(|o| !o.is_empty() && o.chars().all(|c| ('0'..='7').contains(&c))));
    is_int || is_yaml_float(body) || is_base60(body) || is_timestamp(s)
}

/// `^(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
    let mant_ok = match mant.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mant),
    };
    let exp_ok = exp.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mant_ok && exp_ok
}

/// YAML 1.1 sexagesimal numbers such as `190:20:30` (`[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`).
fn is_base60(s: &str) -> bool {
    let (main, _frac) = match s.split_once('.') {
        Some((m, f)) if f.chars().all(|c| c.is_ascii_digit()) => (m, Some(f)),
        Some(_) => return false,
        None => (s, None),
    };
    let mut parts = main.split(':');
    let Some(first) = parts.next() else {
        return false;
    };
    if first.is_empty() || !first.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && rest.iter().all(|p| {
            let b = p.as_bytes();
            match b.len() {
                1 => b[0].is_ascii_digit(),
                2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
                _ => false,
            }
        })
}

/// go-yaml v2 timestamps: `YYYY-M-D` optionally followed by `T`/`t`/space and a time.
fn is_timestamp(s: &str) -> bool {
    let date_end = s.find(['T', 't', ' ']).unwrap_or(s.len());
    let date: Vec<&str> = s[..date_end].split('-').collect();
    let date_ok = date.len() == 3
        && date[0].len() == 4
        && date
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()));
    if !date_ok {
        return false;
    }
    if date_end == s.len() {
        return true;
    }
    let time = &s[date_end + 1..];
    let hms: Vec<&str> = time
        .split(['Z', '+', '-'])
        .next()
        .unwrap_or("")
        .split(':')
        .collect();
    hms.len() == 3
        && hms[..2]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Whether libyaml may write `s` as a plain scalar in block context
/// (`yaml_emitter_analyze_scalar`).
fn plain_allowed(s: &str) -> bool {
    if s.is_empty()
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.starts_with("---")
        || s.starts_with("...")
    {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    if chars
        .iter()
        .any(|c| c.is_control() || *c == '\u{feff}' || *c == '\n' || *c == '\r')
    {
        return false;
    }
    let first = chars[0];
    if "#,[]{}&*!|>'\"%@`".contains(first) {
        return false;
    }
    let followed_by_blank = |i: usize| chars.get(i + 1).is_none_or(|c| *c == ' ' || *c == '\t');
    if (first == '-' || first == '?' || first == ':') && followed_by_blank(0) {
        return false;
    }
    for (i, c) in chars.iter().enumerate() {
        if *c == ':' && followed_by_blank(i) {
            return false;
        }
        if *c == '#' && i > 0 && (chars[i - 1] == ' ' || chars[i - 1] == '\t') {
            return false;
        }
    }
    true
}

fn yaml_string(s: &str, indent: usize) -> String {
    if s.contains('\n') && !s.starts_with(' ') && s.chars().all(|c| c == '\n' || !c.is_control()) {
        // Literal block, as go-yaml v2 writes multi-line strings.
        let (body, chomp) = match s.strip_suffix('\n') {
            Some(b) if !b.ends_with('\n') => (b, ""),
            Some(_) => (s.trim_end_matches('\n'), "+"),
            None => (s, "-"),
        };
        let pad = " ".repeat(indent);
        let mut out = format!("|{chomp}");
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
                out.push_str(line);
            }
        }
        return out;
    }
    if resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    if s.chars().any(|c| c.is_control()) {
        return double_quoted(s);
    }
    format!("'{}'", s.replace('\'', "''"))
}

/// A mapping key: quoted like any string, never folded (libyaml writes simple keys without
/// breaks).
fn yaml_key(k: &str) -> String {
    yaml_string(k, 0)
}

/// libyaml's line folding (go-yaml v2 keeps `best_width` 80): in a plain or quoted scalar that
/// starts at `column`, a single space met once the line is past column 80 becomes a line break
/// followed by `indent` spaces (readers fold it back into a space). Not for the first or last
/// character of a quoted scalar, nor where another space follows (except in double quotes,
/// which escape that following space with `\`).
fn wrap(rendered: &str, indent: usize, column: usize) -> String {
    const BEST_WIDTH: usize = 80;
    let chars: Vec<char> = rendered.chars().collect();
    let quote = match chars.first() {
        Some('\'') => Some('\''),
        Some('"') => Some('"'),
        Some('|') => return rendered.to_string(),
        _ => None,
    };
    let mut out = String::with_capacity(rendered.len());
    let mut col = column;
    let mut prev_space = false;
    let last = chars.len().saturating_sub(1);
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_space = chars.get(i + 1) == Some(&' ');
            let inner = match quote {
                // Positions 0 and `last` are the quotes; the scalar's own first and last
                // characters never break.
                Some(_) => i > 1 && i + 1 < last,
                None => true,
            };
            let may_break = !prev_space && col > BEST_WIDTH && inner;
            if may_break && (quote == Some('"') || !next_space) {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                col = indent;
                if quote == Some('"') && next_space {
                    out.push('\\');
                    col += 1;
                }
                prev_space = true;
                continue;
            }
            prev_space = true;
        } else {
            prev_space = false;
        }
        out.push(c);
        col += 1;
    }
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------- JSON

/// `json.MarshalIndent(v, "", "  ")` plus a final newline. Like Go's encoder, `<`, `>`, `&`,
/// U+2028 and U+2029 are written as `\u` escapes (they can only occur inside strings, so a
/// plain replacement is exact).
pub fn to_json(v: &Value) -> String {
    let pretty = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    let mut s = String::with_capacity(pretty.len() + 1);
    for c in pretty.chars() {
        match c {
            '<' => s.push_str("\\u003c"),
            '>' => s.push_str("\\u003e"),
            '&' => s.push_str("\\u0026"),
            '\u{2028}' => s.push_str("\\u2028"),
            '\u{2029}' => s.push_str("\\u2029"),
            c => s.push(c),
        }
    }
    s.push('\n');
    s
}

// ---------------------------------------------------------------- numbers

/// Go's `%v` for a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`: shortest digits, exponent
/// form when the exponent is < -4 or >= 6): `100`, `0.5`, `1e+06`, `1.5e-07`.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return "0".into();
    }
    // Shortest round-trip digits and decimal exponent, from Rust's `{:e}` (e.g. "1.5e6").
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    // strconv's 'g' with the shortest precision uses %e when exp < -4 || exp >= 6.
    let body = if !(-4..6).contains(&exp) {
        let (d0, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{d0}{frac}e{sign}{:02}", exp.abs())
    } else if exp >= 0 {
        let e = exp as usize;
        if digits.len() > e + 1 {
            format!("{}.{}", &digits[..=e], &digits[e + 1..])
        } else {
            format!("{digits}{}", "0".repeat(e + 1 - digits.len()))
        }
    } else {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    };
    if neg { format!("-{body}") } else { body }
}

// ---------------------------------------------------------------- tables

/// Go's `tabwriter.NewWriter(w, 5, 1, 3, ' ', 0)` fed lines whose cells all end in a tab: each
/// column is as wide as its widest cell plus 3, and at least 5.
pub fn tabwrite(rows: &[Vec<String>]) -> String {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![5usize; ncols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count() + 3);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            out.push_str(&" ".repeat(widths[i] - cell.chars().count()));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_like_sigs_k8s_io() {
        let v = json!({
            "kind": "IPPoolList",
            "apiVersion": "projectcalico.org/v3",
            "metadata": {"resourceVersion": "12"},
            "items": [{
                "kind": "IPPool",
                "metadata": {"name": "p", "creationTimestamp": "2026-11-22T14:00:00Z", "labels": {}},
                "spec": {"cidr": "10.0.0.0/16", "natOutgoing": true, "nodeSelector": "all()",
                         "blockSize": 26, "allowedUses": ["Workload", "Tunnel"],
                         "sel": "!has(a)", "ports": [8080, "9000:9010", "10:30"], "n": "true"}
            }]
        });
        let want = "apiVersion: projectcalico.org/v3
items:
- kind: IPPool
  metadata:
    creationTimestamp: \"2026-11-22T14:00:00Z\"
    labels: {}
    name: p
  spec:
    allowedUses:
    - Workload
    - Tunnel
    blockSize: 26
    cidr: 10.0.0.0/16
    \"n\": \"true\"
    natOutgoing: true
    nodeSelector: all()
    ports:
    - 8080
    - 9000:9010
    - \"10:30\"
    sel: '!has(a)'
kind: IPPoolList
metadata:
  resourceVersion: \"12\"
";
        assert_eq!(to_yaml(&v), want);
        assert_eq!(
            to_yaml(&json!([{"a": 1}, {"b": [[1, 2]]}])),
            "- a: 1\n- b:\n  - - 1\n    - 2\n"
        );
        assert_eq!(yaml_string("a: b", 0), "'a: b'");
        assert_eq!(yaml_string("it's", 0), "it's");
        assert_eq!(yaml_string("'quoted'", 0), "'''quoted'''");
        assert_eq!(yaml_string("{\"name\":\"x\"}", 0), "'{\"name\":\"x\"}'");
        assert_eq!(yaml_string("1.5", 0), "\"1.5\"");
        assert_eq!(yaml_string("0x1F", 0), "\"0x1F\"");
        assert_eq!(yaml_string("app == 'x' && b", 0), "app == 'x' && b");
        assert_eq!(yaml_string("", 0), "\"\"");
        assert_eq!(yaml_string("a\nb", 2), "|-\n  a\n  b");
    }

    #[test]
    fn long_strings_fold_like_libyaml_and_read_back() {
        let long = "projectcalico.org/orchestrator == 'k8s' && app in {'frontend', 'backend'} && tier == 'web'";
        let v = json!({"spec": {"selector": long, "sel2": format!("!{long}"), "list": [long]}});
        let y = to_yaml(&v);
        let want = [
            "spec:",
            "  list:",
            "  - projectcalico.org/orchestrator == 'k8s' && app in {'frontend', 'backend'} && tier",
            "    == 'web'",
            "  sel2: '!projectcalico.org/orchestrator == ''k8s'' && app in {''frontend'', ''backend''}",
            "    && tier == ''web'''",
            "  selector: projectcalico.org/orchestrator == 'k8s' && app in {'frontend', 'backend'}",
            "    && tier == 'web'",
            "",
        ]
        .join("\n");
        assert_eq!(y, want);
        let back = calico_api::decode::parse_documents("y", &y).unwrap();
        assert_eq!(back[0], v);

        // Double-quoted (a tab forces it), with a double space at a fold point.
        let dq = format!(
            "tab\there {}  end of the line {}",
            "word ".repeat(16),
            "more ".repeat(12)
        );
        let v = json!({"k": dq});
        let y = to_yaml(&v);
        assert!(y.lines().count() > 2, "{y}");
        let back = calico_api::decode::parse_documents("y", &y).unwrap();
        assert_eq!(back[0], v, "{y}");
    }

    #[test]
    fn json_escapes_like_go() {
        let v = json!({"selector": "a == 'x' && b < 3"});
        let out = to_json(&v);
        assert_eq!(
            out,
            "{\n  \"selector\": \"a == 'x' \\u0026\\u0026 b \\u003c 3\"\n}\n"
        );
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn go_float_formatting() {
        for (f, want) in [
            (100.0, "100"),
            (0.5, "0.5"),
            (1e6, "1e+06"),
            (1e21, "1e+21"),
            (123456.0, "123456"),
            (1000.0, "1000"),
            (1.5e-7, "1.5e-07"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (-2.25, "-2.25"),
            (10000000.0, "1e+07"),
        ] {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    #[test]
    fn tabwriter_pads_every_column() {
        let rows = vec![
            vec!["NAME".to_string(), "CIDR".to_string()],
            vec![
                "default-ipv4-ippool".to_string(),
                "192.168.0.0/16".to_string(),
            ],
        ];
        assert_eq!(
            tabwrite(&rows),
            "NAME                  CIDR             \ndefault-ipv4-ippool   192.168.0.0/16   \n"
        );
    }
}
