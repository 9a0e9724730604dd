//! Felix's tier and policy ordering (`felix/calc/policy_sorter.go` `TierLess`, `PolKVLess`).

use std::cmp::Ordering;

use calico_dataplane_model::PolicyKind;

use crate::{ParsedPolicy, ParsedTier};

/// The v3 kind name Felix's `model.PolicyKey.Kind` holds, used in the ordering tie-break.
pub fn policy_kind_name(kind: PolicyKind) -> &'static str {
    match kind {
        PolicyKind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
        PolicyKind::NetworkPolicy => "NetworkPolicy",
        PolicyKind::KubernetesNetworkPolicy => "KubernetesNetworkPolicy",
    }
}

/// `policy_sorter.go` `TierLess` between two tiers that both exist: order ascending with a
/// missing order last, then name.
pub fn tier_order(a: &ParsedTier, b: &ParsedTier) -> Ordering {
    match (a.order, b.order) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.total_cmp(&y),
    }
    .then_with(|| a.name.cmp(&b.name))
}

/// The full `TierLess`, including `TierInfo.Valid`: a tier that policies name but no Tier
/// resource defines is invalid and sorts after every valid tier (`policy_sorter.go`
/// `UpdatePolicy` creates it with `Valid: false`, no order, empty default action).
pub fn tier_order_with_validity(
    a: &ParsedTier,
    a_valid: bool,
    b: &ParsedTier,
    b_valid: bool,
) -> Ordering {
    b_valid.cmp(&a_valid).then_with(|| tier_order(a, b))
}

/// `policy_sorter.go` `PolKVLess`: order ascending (missing = +Inf), ties broken by the
/// string `"<name>/<namespace>/<kind>"`. The tier is not part of the comparison (policies
/// are only ever compared within one tier).
pub fn policy_order(a: &ParsedPolicy, b: &ParsedPolicy) -> Ordering {
    let order = |p: &ParsedPolicy| p.order.unwrap_or(f64::INFINITY);
    let key = |p: &ParsedPolicy| {
        format!(
            "{}/{}/{}",
            p.id.name,
            p.id.namespace,
            policy_kind_name(p.id.kind)
        )
    };
    order(a)
        .total_cmp(&order(b))
        .then_with(|| key(a).cmp(&key(b)))
}
