//! Building combined selector text the way Calico's v3→v1 update processors do
//! (`libcalico-go/lib/backend/syncersv1/updateprocessors/{selectors,rules,networkpolicyprocessor}.go`).
//!
//! Those processors glue selector *text* together with `fmt.Sprintf` and store the result
//! unnormalised in the v1 model, so byte-exact output needs the same string shapes:
//! - `"(A) && (B)"` when combining rule selectors ([`and_text`], [`and_all_text`]);
//! - `"(A) && B"` when appending a prefixed namespace / service-account selector
//!   ([`prefix_and_append`]);
//! - the appended part is the canonical form of the selector with every label prefixed
//!   ([`attach_prefix`], Calico `parseSelectorAttachPrefix`).
//!
//! Calico logs and returns `""` when a selector fails to parse; we return the error.

use crate::{SelectorError, parse};

/// `"(a) && (b)"`.
pub fn and_text(a: &str, b: &str) -> String {
    format!("({a}) && ({b})")
}

/// Calico's rule-selector join: nothing for no selectors, the selector itself for one,
/// `"(s1) && (s2) && ..."` for several.
pub fn and_all_text<S: AsRef<str>>(selectors: &[S]) -> String {
    match selectors {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        many => {
            let parts: Vec<&str> = many.iter().map(AsRef::as_ref).collect();
            format!("({})", parts.join(") && ("))
        }
    }
}

/// Parses `selector`, prefixes every label with `prefix` and returns the canonical form
/// (Calico `parseSelectorAttachPrefix`), e.g. `k == 'v'` with `pcns.` → `pcns.k == "v"`.
pub fn attach_prefix(selector: &str, prefix: &str) -> Result<String, SelectorError> {
    Ok(parse(selector)?.with_label_prefix(prefix)?.to_string())
}

/// Calico `prefixAndAppendSelector`: if `new` is non-empty, prefix its labels and append it as
/// `"(current) && prefixed"` (or just `prefixed` when `current` is empty).
pub fn prefix_and_append(current: &str, new: &str, prefix: &str) -> Result<String, SelectorError> {
    if new.is_empty() {
        return Ok(current.to_owned());
    }
    let prefixed = attach_prefix(new, prefix)?;
    Ok(if current.is_empty() {
        prefixed
    } else {
        format!("({current}) && {prefixed}")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_calico() {
        assert_eq!(
            and_text(
                "projectcalico.org/namespace == 'namespace2'",
                "mylabel = value1"
            ),
            "(projectcalico.org/namespace == 'namespace2') && (mylabel = value1)"
        );
        assert_eq!(and_all_text::<&str>(&[]), "");
        assert_eq!(and_all_text(&["has(a)"]), "has(a)");
        assert_eq!(and_all_text(&["a", "b", "c"]), "(a) && (b) && (c)");
        // rules_test.go: namespace selector with pcns. prefix.
        assert_eq!(
            attach_prefix("namespacelabel1 == 'value1'", "pcns.").unwrap(),
            "pcns.namespacelabel1 == \"value1\""
        );
        assert_eq!(
            prefix_and_append("has(x)", "k == 'v'", "pcsa.").unwrap(),
            "(has(x)) && pcsa.k == \"v\""
        );
        assert_eq!(
            prefix_and_append("", "k == 'v'", "pcsa.").unwrap(),
            "pcsa.k == \"v\""
        );
        assert_eq!(prefix_and_append("has(x)", "", "pcsa.").unwrap(), "has(x)");
        assert!(prefix_and_append("has(x)", "k ==", "pcsa.").is_err());
    }

    #[test]
    fn text_and_matches_ast_and() {
        let a = parse("a == 'x' || b == 'y'").unwrap();
        let b = parse("has(c) && !has(d)").unwrap();
        let via_text = parse(&and_text(a.as_str(), b.as_str())).unwrap();
        let via_ast = a.and(&b);
        assert_eq!(via_text.to_string(), via_ast.to_string());
        assert_eq!(via_text.unique_id(), via_ast.unique_id());
        assert_eq!(
            via_ast.to_string(),
            "((a == \"x\" || b == \"y\") && (has(c) && !has(d)))"
        );
    }
}
