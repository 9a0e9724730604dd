//! The tables `calicoctl ipam show` prints: go-pretty v6's `table.Writer` with its default
//! style (`StyleDefault`: `+`/`-`/`|` box, one space of padding, a separator under the header,
//! no separators between rows), and Go's `%.5g` number formatting.

/// Horizontal alignment of a column's data cells (go-pretty `ColumnConfig.Align`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table rendered the way go-pretty renders calicoctl's.
#[derive(Debug, Clone, Default)]
pub struct GoTable {
    header: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl GoTable {
    pub fn new(header: &[&str]) -> Self {
        GoTable {
            header: header.iter().map(|h| h.to_string()).collect(),
            align: vec![Align::Left; header.len()],
            rows: Vec::new(),
        }
    }

    /// Right-aligns the data cells of the named column.
    pub fn align_right(mut self, name: &str) -> Self {
        if let Some(i) = self.header.iter().position(|h| h == name) {
            self.align[i] = Align::Right;
        }
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The rendered table, each line ending in `\n` (what `SetOutputMirror` + `Render` print).
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let border: String = {
            let mut s = String::from("+");
            for w in &width {
                s.push_str(&"-".repeat(w + 2));
                s.push('+');
            }
            s
        };
        let line = |cells: &[String], aligns: &[Align]| {
            let mut s = String::from("|");
            for i in 0..n {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = width[i].saturating_sub(c.chars().count());
                s.push(' ');
                // Cells are strings, so go-pretty never treats a column as numeric: headers
                // and unconfigured columns align left (`AlignDefault`).
                match aligns[i] {
                    Align::Left => {
                        s.push_str(c);
                        s.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        s.push_str(&" ".repeat(pad));
                        s.push_str(c);
                    }
                }
                s.push_str(" |");
            }
            s
        };
        let mut out = String::new();
        out.push_str(&border);
        out.push('\n');
        // go-pretty upper-cases headers (`FormatOptionsDefault.Header = FormatUpper`).
        let header: Vec<String> = self.header.iter().map(|h| h.to_uppercase()).collect();
        out.push_str(&line(&header, &vec![Align::Left; n]));
        out.push('\n');
        out.push_str(&border);
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r, &self.align));
            out.push('\n');
        }
        out.push_str(&border);
        out.push('\n');
        out
    }
}

/// Go's `fmt.Sprintf("%.5g", float64(n))`: five significant digits, exponent form
/// (`1.0486e+06`) from 10^5 up, trailing zeros dropped.
pub fn g5(n: f64) -> String {
    if n == 0.0 {
        return "0".into();
    }
    // Rust's `{:.4e}` rounds the exact decimal value half-to-even, as strconv does.
    let sci = format!("{n:.4e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..5).contains(&exp) {
        let mant = if mant.contains('.') {
            mant.trim_end_matches('0').trim_end_matches('.')
        } else {
            mant
        };
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (4 - exp).max(0) as usize;
    let fixed = format!("{n:.decimals$}");
    if fixed.contains('.') {
        fixed
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        fixed
    }
}

/// `fmt.Sprintf("%.5g (%.f%%)", n, 100*n/capacity)`, as calicoctl's utilisation cells.
pub fn with_percentage(n: f64, capacity: f64) -> String {
    let pct = 100.0 * n / capacity;
    let pct = if pct.is_nan() {
        "NaN".to_string()
    } else if pct.is_infinite() {
        "+Inf".to_string()
    } else {
        format!("{pct:.0}")
    };
    format!("{} ({pct}%)", g5(n))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn g5_matches_go() {
        // Values checked against Go's fmt.Sprintf("%.5g", float64(n)).
        for (n, want) in [
            (0.0, "0"),
            (5.0, "5"),
            (64.0, "64"),
            (65536.0, "65536"),
            (99999.0, "99999"),
            (100000.0, "1e+05"),
            (262144.0, "2.6214e+05"),
            (1048576.0, "1.0486e+06"),
            (1234550.0, "1.2346e+06"),
            (4294967296.0, "4.295e+09"),
            (9223372036854775807.0, "9.2234e+18"),
        ] {
            assert_eq!(g5(n), want, "{n}");
        }
    }

    #[test]
    fn percentages_round_half_to_even_like_go() {
        assert_eq!(with_percentage(5.0, 65536.0), "5 (0%)");
        assert_eq!(with_percentage(65531.0, 65536.0), "65531 (100%)");
        assert_eq!(with_percentage(1.0, 8.0), "1 (12%)");
        assert_eq!(with_percentage(3.0, 8.0), "3 (38%)");
        assert_eq!(with_percentage(1.0, 2.0), "1 (50%)");
    }

    #[test]
    fn renders_like_go_pretty_default_style() {
        let mut t = GoTable::new(&["GROUPING", "CIDR", "IPS TOTAL"]).align_right("IPS TOTAL");
        t.row(vec!["IP Pool".into(), "10.0.0.0/16".into(), "65536".into()]);
        t.row(vec!["Block".into(), "10.0.0.0/26".into(), "64".into()]);
        let want = "\
+----------+-------------+-----------+
| GROUPING | CIDR        | IPS TOTAL |
+----------+-------------+-----------+
| IP Pool  | 10.0.0.0/16 |     65536 |
| Block    | 10.0.0.0/26 |        64 |
+----------+-------------+-----------+
";
        assert_eq!(t.render(), want);
    }

    #[test]
    fn empty_table_keeps_header_separator() {
        let t = GoTable::new(&["PROPERTY", "VALUE"]);
        let want = "\
+----------+-------+
| PROPERTY | VALUE |
+----------+-------+
+----------+-------+
";
        assert_eq!(t.render(), want);
    }
}
