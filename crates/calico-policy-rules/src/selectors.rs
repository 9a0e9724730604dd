//! The v3 → v1 selector rewriting of libcalico-go's update processors
//! (`libcalico-go/lib/backend/syncersv1/updateprocessors/rules.go`,
//! `networkpolicyprocessor.go`, `globalnetworkpolicyprocessor.go`) and Felix's
//! `combineMatchesIfPossible` (`felix/calc/rule_scanner.go`). Everything here produces selector
//! *text* exactly as Calico does (including its plain-text `all()` replacements), because the
//! IP-set IDs Felix renders are hashes of the parsed canonical form.

use calico_api::rule::{EntityRule, ServiceAccountMatch};
use calico_api::workloadendpoint::LABEL_NAMESPACE;
use calico_selector::Selector;
use calico_selector::compose::attach_prefix;

use crate::error::RulesError;

/// `projectcalico.org/serviceaccount` (`apiv3.LabelServiceAccount`).
pub const LABEL_SERVICE_ACCOUNT: &str = "projectcalico.org/serviceaccount";
/// Prefix of the labels a namespace profile applies (`conversion.NamespaceLabelPrefix`).
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
/// Prefix of the labels a service-account profile applies
/// (`conversion.ServiceAccountLabelPrefix`).
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";

pub(crate) fn parse_selector(owner: &str, text: &str) -> Result<Selector, RulesError> {
    calico_selector::parse(text).map_err(|e| RulesError::BadSelector {
        owner: owner.to_string(),
        selector: text.to_string(),
        reason: e.to_string(),
    })
}

fn prefixed(owner: &str, selector: &str, prefix: &str) -> Result<String, RulesError> {
    attach_prefix(selector, prefix).map_err(|e| RulesError::BadSelector {
        owner: owner.to_string(),
        selector: selector.to_string(),
        reason: e.to_string(),
    })
}

/// `selectors.go` `prefixAndAppendSelector`.
fn prefix_and_append(
    owner: &str,
    current: String,
    new: &str,
    prefix: &str,
) -> Result<String, RulesError> {
    if new.is_empty() {
        return Ok(current);
    }
    let p = prefixed(owner, new, prefix)?;
    Ok(if current.is_empty() {
        p
    } else {
        format!("({current}) && {p}")
    })
}

/// `rules.go` `parseServiceAccounts`: names become
/// `projectcalico.org/serviceaccount in {...}` (normalised), ANDed after the `pcsa.`-prefixed
/// selector.
fn service_account_selector(owner: &str, sam: &ServiceAccountMatch) -> Result<String, RulesError> {
    let updated = if sam.selector.is_empty() {
        String::new()
    } else {
        prefixed(owner, &sam.selector, SERVICE_ACCOUNT_LABEL_PREFIX)?
    };
    if sam.names.is_empty() {
        return Ok(updated);
    }
    let names = format!(
        "{LABEL_SERVICE_ACCOUNT} in {{ '{}' }}",
        sam.names.join("', '")
    );
    let names = parse_selector(owner, &names)?.to_string();
    Ok(if updated.is_empty() {
        names
    } else {
        format!("({updated}) && ({names})")
    })
}

/// `rules.go` `GetEntityRuleSelector` / `getEndpointSelector`: the v1 selector text for one
/// side of a rule of a policy in namespace `ns` (empty for global policies and profiles).
pub fn entity_selector_text(owner: &str, er: &EntityRule, ns: &str) -> Result<String, RulesError> {
    let sa = match &er.service_accounts {
        Some(sam) => service_account_selector(owner, sam)?,
        None => String::new(),
    };
    let ns_selector = if !er.namespace_selector.is_empty() {
        // "We treat all() as select all namespaces" / "global() as opposite to all()": a
        // plain text replacement on the prefixed canonical form, as Calico does it.
        prefixed(owner, &er.namespace_selector, NAMESPACE_LABEL_PREFIX)?
            .replace("all()", &format!("has({LABEL_NAMESPACE})"))
            .replace("global()", &format!("!has({LABEL_NAMESPACE})"))
    } else if !ns.is_empty() {
        format!("{LABEL_NAMESPACE} == '{ns}'")
    } else {
        String::new()
    };
    let parts: Vec<&str> = [sa.as_str(), er.selector.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let mut selector = match parts.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        many => format!("({})", many.join(") && (")),
    };
    if !ns_selector.is_empty()
        && (!selector.is_empty()
            || !er.not_selector.is_empty()
            || !er.namespace_selector.is_empty())
    {
        selector = if selector.is_empty() {
            ns_selector
        } else {
            format!("({ns_selector}) && ({selector})")
        };
    }
    Ok(selector)
}

/// `rule_scanner.go` `combineMatchesIfPossible`: with a positive selector, the negated one is
/// folded into it (`(pos) && (!(neg))`); without one, the negated selector stays separate so
/// that it also matches addresses outside every known endpoint.
pub(crate) fn combine_selectors(positive: String, negated: &str) -> (String, String) {
    if positive.is_empty() || negated.is_empty() {
        return (positive, negated.to_string());
    }
    (format!("({positive}) && (!({negated}))"), String::new())
}

/// `networkpolicyprocessor.go`: `(sel) && projectcalico.org/namespace == 'ns'` (just the
/// namespace term when the selector is empty), then the `pcsa.`-prefixed
/// serviceAccountSelector appended.
pub(crate) fn namespaced_policy_selector(
    owner: &str,
    namespace: &str,
    selector: &str,
    service_account_selector: &str,
) -> Result<String, RulesError> {
    let ns_sel = format!("{LABEL_NAMESPACE} == '{namespace}'");
    let sel = if selector.is_empty() {
        ns_sel
    } else {
        format!("({selector}) && {ns_sel}")
    };
    prefix_and_append(
        owner,
        sel,
        service_account_selector,
        SERVICE_ACCOUNT_LABEL_PREFIX,
    )
}

/// `globalnetworkpolicyprocessor.go`: namespaceSelector appended with `pcns.` and every
/// `all()` replaced by `has(projectcalico.org/namespace)`; then serviceAccountSelector with
/// `pcsa.` and `all()` → `has(projectcalico.org/serviceaccount)` (plain text replacements on
/// the whole selector, as Calico does).
pub(crate) fn global_policy_selector(
    owner: &str,
    selector: &str,
    namespace_selector: &str,
    service_account_selector: &str,
) -> Result<String, RulesError> {
    let mut sel = selector.to_string();
    if !namespace_selector.is_empty() {
        sel = prefix_and_append(owner, sel, namespace_selector, NAMESPACE_LABEL_PREFIX)?
            .replace("all()", &format!("has({LABEL_NAMESPACE})"));
    }
    if !service_account_selector.is_empty() {
        sel = prefix_and_append(
            owner,
            sel,
            service_account_selector,
            SERVICE_ACCOUNT_LABEL_PREFIX,
        )?
        .replace("all()", &format!("has({LABEL_SERVICE_ACCOUNT})"));
    }
    Ok(sel)
}
