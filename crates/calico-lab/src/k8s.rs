//! What Calico's Kubernetes integration writes, without Kubernetes: the lab hands calicoctl the
//! Kubernetes objects themselves (a `v1` Namespace, its `default` ServiceAccount, a pod's
//! ServiceAccount) and calicoctl stores what calico-kube-controllers would (calico-k8s's
//! `NamespaceToProfile` / `ServiceAccountToProfile`: the `kns.<name>` Profile with allow-all
//! rules and `pcns.`-prefixed namespace labels, the `ksa.<ns>.<sa>` Profile with `pcsa.` labels).
//! A pod's WorkloadEndpoint carries the pod's labels, `projectcalico.org/serviceaccount` and
//! the profiles `[kns.<ns>, ksa.<ns>.<sa>]` (`PodToWorkloadEndpoints`).

use std::collections::BTreeMap;

use crate::error::LabError;
use crate::state::{LabRecord, Layout, PodRecord};
use crate::{cni, ctl};

/// `k=v,k2=v2` into a map; keys and values checked against Kubernetes' label syntax (a
/// qualified name with an optional DNS prefix; values up to 63 of `[A-Za-z0-9._-]`).
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, LabError> {
    let mut out = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| LabError::invalid("label", format!("{item:?} is not key=value")))?;
        let name = k.rsplit('/').next().unwrap_or(k);
        let name_ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric());
        let prefix_ok = match k.rsplit_once('/') {
            None => true,
            Some((p, _)) => is_dns_subdomain(p),
        };
        let value_ok = v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && (v.is_empty()
                || (v.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && v.ends_with(|c: char| c.is_ascii_alphanumeric())));
        if !(name_ok && prefix_ok) {
            return Err(LabError::invalid("label key", format!("{k:?}")));
        }
        if !value_ok {
            return Err(LabError::invalid("label value", format!("{v:?} of {k}")));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// RFC 1123 subdomain (Kubernetes namespace, pod and service-account names use its label form).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A Kubernetes namespace name: an RFC 1123 label.
pub fn check_namespace_name(name: &str) -> Result<(), LabError> {
    if is_dns_subdomain(name) && !name.contains('.') {
        Ok(())
    } else {
        Err(LabError::invalid(
            "namespace name",
            format!("{name:?} (lower-case letters, digits and '-', at most 63)"),
        ))
    }
}

/// A Kubernetes `v1` Namespace object (JSON is YAML too, so calicoctl reads it as a manifest).
pub fn namespace_object(name: &str, labels: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels},
    })
}

/// A Kubernetes `v1` ServiceAccount object.
pub fn service_account_object(namespace: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    })
}

/// A `v1` List of objects, applied as one manifest.
fn list(items: Vec<serde_json::Value>) -> String {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// Creates the namespace and, as Kubernetes does for every namespace, its `default` service
/// account; calicoctl writes their profiles.
pub fn add_namespace(
    layout: &Layout,
    lab: &mut LabRecord,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), LabError> {
    check_namespace_name(name)?;
    let manifest = list(vec![
        namespace_object(name, labels),
        service_account_object(name, "default"),
    ]);
    ctl::apply_yaml(lab, &layout.dir, &manifest)?;
    if !lab.namespaces.iter().any(|n| n == name) {
        lab.namespaces.push(name.to_string());
    }
    Ok(())
}

/// Deletes the namespace (and so its profiles); refused while pods live in it (Kubernetes deletes them
/// first; here the user does, with `pod del`).
pub fn del_namespace(lab: &mut LabRecord, name: &str) -> Result<(), LabError> {
    let pods: Vec<&str> = lab
        .pods
        .iter()
        .filter(|p| p.namespace == name)
        .map(|p| p.name.as_str())
        .collect();
    if !pods.is_empty() {
        return Err(LabError::Failed(format!(
            "namespace {name} still has pods ({}): delete them with `calico-lab pod del`",
            pods.join(", ")
        )));
    }
    // Deleting a Namespace deletes what was written for it and its contents: the `kns.`
    // profile, every `ksa.<name>.*` profile and the namespace's converted Kubernetes policies.
    ctl::run(lab, &["delete", "namespace", name])?;
    lab.namespaces.retain(|n| n != name);
    Ok(())
}

/// Gives the pod's WorkloadEndpoint what Calico gives a Kubernetes pod's: its labels, the
/// service-account label and the namespace/service-account profiles.
pub fn label_pod(layout: &Layout, lab: &LabRecord, pod: &PodRecord) -> Result<(), LabError> {
    if pod.service_account != "default" {
        ctl::apply_yaml(
            lab,
            &layout.dir,
            &service_account_object(&pod.namespace, &pod.service_account).to_string(),
        )?;
    }
    let mut labels = pod.labels.clone();
    labels.insert(
        "projectcalico.org/serviceaccount".into(),
        pod.service_account.clone(),
    );
    let wep = wep_name(&pod.node, &pod.name);
    let patch = serde_json::json!({
        "metadata": {"labels": labels},
        "spec": {"profiles": [
            format!("kns.{}", pod.namespace),
            format!("ksa.{}.{}", pod.namespace, pod.service_account),
        ]},
    });
    ctl::run(
        lab,
        &[
            "patch",
            "workloadendpoint",
            &wep,
            "-n",
            &pod.namespace,
            "-p",
            &patch.to_string(),
        ],
    )?;
    Ok(())
}

/// Calico's WorkloadEndpoint name for a pod: `<node>-k8s-<pod>-eth0`, each `-` inside a part
/// doubled (libcalico-go `names.WorkloadEndpointIdentifiers.CalculateWorkloadEndpointName`).
pub fn wep_name(node: &str, pod: &str) -> String {
    let esc = |s: &str| s.replace('-', "--");
    format!("{}-k8s-{}-eth0", esc(node), esc(pod))
}

/// Creates a pod through CNI and labels its endpoint.
pub fn add_pod(
    layout: &Layout,
    lab: &LabRecord,
    node: &str,
    namespace: &str,
    name: &str,
    labels: BTreeMap<String, String>,
    service_account: &str,
) -> Result<PodRecord, LabError> {
    check_namespace_name(namespace)?;
    if !is_dns_subdomain(name) {
        return Err(LabError::invalid(
            "pod name",
            format!("{name:?} (an RFC 1123 subdomain)"),
        ));
    }
    if !is_dns_subdomain(service_account) {
        return Err(LabError::invalid(
            "service account",
            format!("{service_account:?}"),
        ));
    }
    lab.node(node)?;
    if lab
        .pods
        .iter()
        .any(|p| p.namespace == namespace && p.name == name)
    {
        return Err(LabError::invalid(
            "pod",
            format!("{namespace}/{name} already exists"),
        ));
    }
    if !lab.namespaces.iter().any(|n| n == namespace) {
        return Err(LabError::invalid(
            "--namespace",
            format!(
                "{namespace:?} does not exist: create it with `calico-lab namespace add {namespace}`"
            ),
        ));
    }
    let mut pod = cni::add_pod(layout, lab, node, namespace, name)?;
    pod.labels = labels;
    pod.service_account = service_account.to_string();
    if let Err(e) = label_pod(layout, lab, &pod) {
        let _ = cni::del_pod(layout, lab, &pod);
        return Err(e);
    }
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_and_reject_bad_syntax() {
        let m = parse_labels("app=web, tier=front,example.com/x=1").unwrap_or_default();
        assert_eq!(m.len(), 3);
        assert_eq!(m.get("example.com/x").map(String::as_str), Some("1"));
        for bad in ["app", "=v", "a b=c", "app=-x", "Bad_Prefix/x=1"] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
        assert!(parse_labels("").map(|m| m.is_empty()).unwrap_or(false));
    }

    #[test]
    fn namespace_and_service_account_objects() {
        let labels = parse_labels("team=a,example.com/x=1").unwrap_or_default();
        let ns = namespace_object("dev", &labels);
        assert_eq!(
            ns,
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": "dev", "labels": {"team": "a", "example.com/x": "1"}}})
        );
        let sa = service_account_object("dev", "websa");
        assert_eq!(
            sa,
            serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
                "name": "websa", "namespace": "dev"}})
        );
        let l: serde_json::Value = serde_json::from_str(&list(vec![ns, sa])).unwrap_or_default();
        assert_eq!(l["kind"], "List");
        assert_eq!(l["items"][1]["kind"], "ServiceAccount");
    }

    #[test]
    fn wep_names_double_dashes() {
        assert_eq!(
            wep_name("node1", "node1-pod1"),
            "node1-k8s-node1--pod1-eth0"
        );
        assert_eq!(wep_name("my-node", "p"), "my--node-k8s-p-eth0");
    }

    #[test]
    fn namespace_names_are_rfc1123_labels() {
        assert!(check_namespace_name("kube-system").is_ok());
        for bad in ["", "A", "a.b", "-a", &"a".repeat(64)] {
            assert!(check_namespace_name(bad).is_err(), "{bad}");
        }
    }
}
