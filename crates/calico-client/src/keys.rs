//! Calico's etcd v3 key layout for `projectcalico.org/v3` resources
//! (`libcalico-go/lib/backend/model/resource.go`, `ResourceKey.defaultPath` and
//! `ResourceListOptions.defaultPathRoot`):
//!
//! - cluster-scoped: `/calico/resources/v3/projectcalico.org/<plural>/<name>`
//! - namespaced:     `/calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>`
//!
//! Names are used verbatim (Calico does not escape resource names in these keys; validation keeps
//! `/` out of them). The plural is the lower-cased registration plural, so `BGPFilter` lives
//! under `bgpfilters`.

use calico_api::KindInfo;

/// Root of every v3 resource key.
pub const RESOURCES_ROOT: &str = "/calico/resources/v3/projectcalico.org/";

/// The key one resource is stored under. `namespace` is ignored for cluster-scoped kinds.
pub fn resource_key(kind: &KindInfo, namespace: &str, name: &str) -> String {
    if kind.namespaced {
        format!("{RESOURCES_ROOT}{}/{namespace}/{name}", kind.plural)
    } else {
        format!("{RESOURCES_ROOT}{}/{name}", kind.plural)
    }
}

/// The prefix a list of `kind` reads: every object of the kind, or only those of one namespace
/// when `namespace` is given (namespaced kinds only). Always ends in `/` so that `networksets`
/// never matches `networksets-foo` (Calico's `calculateListKeyAndOptions`).
pub fn list_prefix(kind: &KindInfo, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if kind.namespaced && !ns.is_empty() => {
            format!("{RESOURCES_ROOT}{}/{ns}/", kind.plural)
        }
        _ => format!("{RESOURCES_ROOT}{}/", kind.plural),
    }
}

/// Splits a stored key of `kind` back into `(namespace, name)` (namespace empty for
/// cluster-scoped kinds). `None` when the key does not have the kind's shape, as Calico's
/// `KeyFromDefaultPath` skips such keys in lists and watches.
pub fn parse_key<'a>(kind: &KindInfo, key: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = key.strip_prefix(RESOURCES_ROOT)?;
    let rest = rest.strip_prefix(kind.plural)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let out = if kind.namespaced {
        let ns = parts.next()?;
        let name = parts.next()?;
        (ns, name)
    } else {
        ("", parts.next()?)
    };
    if parts.next().is_some() || out.1.is_empty() || (kind.namespaced && out.0.is_empty()) {
        return None;
    }
    Some(out)
}

/// Calico's resource identifier as errors print it (`model.ResourceKey.String()`):
/// `IPPool(default-ipv4-ippool)`, `NetworkPolicy(prod/allow-frontend)`.
pub fn identifier(kind: &KindInfo, namespace: &str, name: &str) -> String {
    if kind.namespaced {
        format!("{}({namespace}/{name})", kind.kind)
    } else {
        format!("{}({name})", kind.kind)
    }
}
