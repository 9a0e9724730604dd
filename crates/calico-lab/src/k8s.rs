//! What Calico's Kubernetes integration writes, without Kubernetes: a namespace becomes the
//! `kns.<name>` Profile (allow-all rules, `pcns.`-prefixed namespace labels plus
//! `pcns.projectcalico.org/name`; libcalico-go `NamespaceToProfile`), a service account the
//! `ksa.<ns>.<sa>` Profile (`pcsa.` labels, no rules; `ServiceAccountToProfile`), and a pod's
//! WorkloadEndpoint carries the pod's labels, `projectcalico.org/serviceaccount` and the
//! profiles `[kns.<ns>, ksa.<ns>.<sa>]` (`PodToWorkloadEndpoints`).

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

fn yaml_map(indent: &str, m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| {
            format!(
                "{indent}{}: {}\n",
                serde_json::Value::from(k.as_str()),
                serde_json::Value::from(v.as_str())
            )
        })
        .collect()
}

/// The `kns.<name>` Profile YAML.
pub fn namespace_profile(name: &str, labels: &BTreeMap<String, String>) -> String {
    let mut apply: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (format!("pcns.{k}"), v.clone()))
        .collect();
    // Kubernetes labels every namespace with its name; Calico adds its own name label.
    apply.insert("pcns.kubernetes.io/metadata.name".into(), name.into());
    apply.insert("pcns.projectcalico.org/name".into(), name.into());
    format!(
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: kns.{name}\nspec:\n  ingress:\n  - action: Allow\n  egress:\n  - action: Allow\n  labelsToApply:\n{}",
        yaml_map("    ", &apply)
    )
}

/// The `ksa.<ns>.<sa>` Profile YAML.
pub fn service_account_profile(namespace: &str, sa: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: ksa.{namespace}.{sa}\nspec:\n  labelsToApply:\n    pcsa.projectcalico.org/name: {}\n",
        serde_json::Value::from(sa)
    )
}

/// Writes the namespace's profiles (and its `default` service account's).
pub fn add_namespace(
    layout: &Layout,
    lab: &mut LabRecord,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), LabError> {
    check_namespace_name(name)?;
    let yaml = format!(
        "{}---\n{}",
        namespace_profile(name, labels),
        service_account_profile(name, "default")
    );
    ctl::apply_yaml(lab, &layout.dir, &yaml)?;
    if !lab.namespaces.iter().any(|n| n == name) {
        lab.namespaces.push(name.to_string());
    }
    Ok(())
}

/// Deletes the namespace's profiles; refused while pods live in it (Kubernetes deletes them
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
    ctl::run(lab, &["delete", "profile", &format!("kns.{name}")])?;
    let sas: std::collections::BTreeSet<String> = std::iter::once("default".to_string())
        .chain(
            lab.pods
                .iter()
                .filter(|p| p.namespace == name)
                .map(|p| p.service_account.clone()),
        )
        .collect();
    for sa in sas {
        // The service account profile may be gone already; that is what we want.
        let _ = ctl::run(lab, &["delete", "profile", &format!("ksa.{name}.{sa}")]);
    }
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
            &service_account_profile(&pod.namespace, &pod.service_account),
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
    fn namespace_profile_has_pcns_labels() {
        let labels = parse_labels("team=a").unwrap_or_default();
        let y = namespace_profile("dev", &labels);
        assert!(y.contains("name: kns.dev"), "{y}");
        assert!(y.contains("\"pcns.team\": \"a\""), "{y}");
        assert!(
            y.contains("\"pcns.projectcalico.org/name\": \"dev\""),
            "{y}"
        );
        assert!(y.contains("- action: Allow"), "{y}");
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
