//! Kubernetes label selector → Calico selector text (Calico `k8sSelectorToCalico`).
//!
//! The text is built exactly as Calico builds it (single-quoted values, ` && ` joins, `in { 'a',
//! 'b' }` sets, `! has(k)`), because it is stored as-is in the converted policy and users and
//! tests compare it verbatim; Calico only canonicalises it later, when hashing for Felix.

use crate::types::LabelSelector;

/// Label Calico puts on every Kubernetes workload endpoint (`apiv3.LabelOrchestrator`), used to
/// restrict pod selectors to Kubernetes pods.
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";
/// Its value for Kubernetes pods.
pub const ORCHESTRATOR_K8S: &str = "k8s";

/// What a selector selects, which changes its conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorType {
    /// Selects namespaces: no orchestrator term; present-but-empty means `all()`; absent
    /// means "" (the policy's own namespace).
    Namespace,
    /// Selects pods: always starts with `projectcalico.org/orchestrator == 'k8s'`.
    Pod,
}

/// Converts a (possibly absent) Kubernetes label selector to Calico selector text.
///
/// - pod selectors begin with `projectcalico.org/orchestrator == 'k8s'`, so an absent or empty
///   pod selector selects every Kubernetes pod (of the namespace the rule is scoped to);
/// - an absent namespace selector is `""`; a present one with no terms is `all()`;
/// - `matchLabels` become `k == 'v'` in key order; `matchExpressions` keep their order:
///   `In` → `k in { 'a', 'b' }`, `NotIn` → `k not in { ... }`, `Exists` → `has(k)`,
///   `DoesNotExist` → `! has(k)`; an unknown operator contributes nothing (Kubernetes
///   validation rejects it before this point).
pub fn k8s_selector_to_calico(sel: Option<&LabelSelector>, kind: SelectorType) -> String {
    let mut terms: Vec<String> = Vec::new();
    if kind == SelectorType::Pod {
        terms.push(format!("{LABEL_ORCHESTRATOR} == '{ORCHESTRATOR_K8S}'"));
    }
    let Some(sel) = sel else {
        return terms.join(" && ");
    };
    if kind == SelectorType::Namespace && sel.is_empty() {
        return "all()".to_string();
    }
    // BTreeMap iterates in key order: the same order Calico gets by sorting the keys.
    for (k, v) in &sel.match_labels {
        terms.push(format!("{k} == '{v}'"));
    }
    for e in &sel.match_expressions {
        let values = e.values.join("', '");
        match e.operator.as_str() {
            "In" => terms.push(format!("{} in {{ '{values}' }}", e.key)),
            "NotIn" => terms.push(format!("{} not in {{ '{values}' }}", e.key)),
            "Exists" => terms.push(format!("has({})", e.key)),
            "DoesNotExist" => terms.push(format!("! has({})", e.key)),
            _ => {}
        }
    }
    terms.join(" && ")
}
