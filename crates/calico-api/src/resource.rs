//! The `CalicoResource` trait every kind implements, and the `Resource` enum over all kinds.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::{FieldError, FieldErrors, FieldPath};
use crate::kinds::KindInfo;
use crate::meta::ObjectMeta;
use crate::{API_VERSION, kinds};

/// The `metadata`/`metadata_mut` pair of [`CalicoResource`] for a kind struct with a
/// `metadata: ObjectMeta` field (every kind here), written once instead of in every impl.
macro_rules! metadata_accessors {
    () => {
        fn metadata(&self) -> &$crate::meta::ObjectMeta {
            &self.metadata
        }
        fn metadata_mut(&mut self) -> &mut $crate::meta::ObjectMeta {
            &mut self.metadata
        }
    };
}
pub(crate) use metadata_accessors;

/// One `projectcalico.org/v3` kind: `{metadata, spec[, status]}` with Calico's JSON shape.
/// `apiVersion` and `kind` are not fields of the struct; [`Resource`] adds and checks them.
pub trait CalicoResource:
    Serialize + DeserializeOwned + Clone + fmt::Debug + PartialEq + Default + Send + Sync + 'static
{
    /// The `kind:` value.
    const KIND: &'static str;

    fn metadata(&self) -> &ObjectMeta;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;

    /// Fills in what Calico's client fills in before storing (e.g. policy `types`, pool
    /// `blockSize`). Idempotent.
    fn apply_defaults(&mut self) {}

    /// Reports every problem, with paths from the resource root (`metadata.name`,
    /// `spec.ingress[0]...`). Called after `apply_defaults`, as Calico's client does.
    fn validate(&self, errs: &mut FieldErrors);

    /// The static facts (plural, scope, aliases) of this kind.
    fn kind_info() -> &'static KindInfo {
        kinds::kind_info(Self::KIND).unwrap_or_else(|| {
            // A kind struct without a row in the kinds table is a programming error caught by
            // the `every_resource_kind_is_in_the_table` test, never by user input.
            panic!("kind {} missing from the kinds table", Self::KIND)
        })
    }
}

/// Why one document could not be turned into a resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("expected an object with apiVersion, kind, metadata and spec, found {0}")]
    NotAnObject(&'static str),
    #[error("apiVersion: missing; expected \"{API_VERSION}\"")]
    MissingApiVersion,
    #[error("apiVersion: unsupported {0:?}; expected \"{API_VERSION}\"")]
    BadApiVersion(String),
    #[error("kind: missing")]
    MissingKind,
    #[error("kind: unknown kind {0:?}")]
    UnknownKind(String),
    #[error("{0}")]
    Field(FieldError),
}

/// Deserializes a kind from a JSON value, reporting the JSON path of the first bad field.
pub fn decode_kind<T: CalicoResource>(value: serde_json::Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        DecodeError::Field(FieldError {
            path,
            message: e.into_inner().to_string(),
        })
    })
}

/// Serializes a kind with `apiVersion` and `kind` first, as Calico prints it.
pub fn encode_kind<T: CalicoResource>(res: &T) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert(
        "apiVersion".into(),
        serde_json::Value::String(API_VERSION.into()),
    );
    out.insert("kind".into(), serde_json::Value::String(T::KIND.into()));
    // Serializing our own plain data structs to a Value cannot fail (no maps with non-string
    // keys, no custom serializers that error); fall back to an empty body if it ever did.
    if let Ok(serde_json::Value::Object(body)) = serde_json::to_value(res) {
        out.extend(body);
    }
    serde_json::Value::Object(out)
}

macro_rules! resources {
    ($($variant:ident => $ty:path),* $(,)?) => {
        /// Any resource of any kind.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Resource {
            $($variant($ty)),*
        }

        impl Resource {
            /// The `kind:` value.
            pub fn kind(&self) -> &'static str {
                match self { $(Resource::$variant(_) => <$ty as CalicoResource>::KIND),* }
            }
            pub fn kind_info(&self) -> &'static KindInfo {
                match self { $(Resource::$variant(_) => <$ty as CalicoResource>::kind_info()),* }
            }
            pub fn metadata(&self) -> &ObjectMeta {
                match self { $(Resource::$variant(r) => r.metadata()),* }
            }
            pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self { $(Resource::$variant(r) => r.metadata_mut()),* }
            }
            pub fn apply_defaults(&mut self) {
                match self { $(Resource::$variant(r) => r.apply_defaults()),* }
            }
            /// Every validation problem, or `Ok(())`.
            pub fn validate(&self) -> Result<(), FieldErrors> {
                let mut errs = FieldErrors::new();
                match self { $(Resource::$variant(r) => r.validate(&mut errs)),* }
                errs.into_result()
            }
            /// The JSON form with `apiVersion` and `kind`.
            pub fn to_json_value(&self) -> serde_json::Value {
                match self { $(Resource::$variant(r) => encode_kind(r)),* }
            }
            /// Decodes the body (without apiVersion/kind) of a resource of kind `kind`.
            pub fn decode_body(kind: &str, body: serde_json::Value) -> Result<Resource, DecodeError> {
                $(
                    if kind == <$ty as CalicoResource>::KIND {
                        return decode_kind::<$ty>(body).map(Resource::$variant);
                    }
                )*
                Err(DecodeError::UnknownKind(kind.to_string()))
            }
            /// Whether a kind of this name can be decoded (the kinds table may list kinds whose
            /// model is not implemented yet).
            pub fn supports_kind(kind: &str) -> bool {
                false $(|| kind == <$ty as CalicoResource>::KIND)*
            }
            /// Every kind name the enum covers.
            pub fn supported_kinds() -> &'static [&'static str] {
                &[$(<$ty as CalicoResource>::KIND),*]
            }
        }

        $(
            impl From<$ty> for Resource {
                fn from(r: $ty) -> Resource { Resource::$variant(r) }
            }
        )*
    };
}

// One line per kind. Keep alphabetical.
resources! {
    BGPConfiguration => crate::bgpconfig::BGPConfiguration,
    BGPFilter => crate::bgpfilter::BGPFilter,
    BGPPeer => crate::bgppeer::BGPPeer,
    CalicoNodeStatus => crate::nodestatus::CalicoNodeStatus,
    ClusterInformation => crate::clusterinfo::ClusterInformation,
    FelixConfiguration => crate::felixconfig::FelixConfiguration,
    GlobalNetworkPolicy => crate::policy::GlobalNetworkPolicy,
    GlobalNetworkSet => crate::networkset::GlobalNetworkSet,
    HostEndpoint => crate::hostendpoint::HostEndpoint,
    IPAMConfiguration => crate::ipamconfig::IPAMConfiguration,
    IPPool => crate::ippool::IPPool,
    IPReservation => crate::ipreservation::IPReservation,
    KubeControllersConfiguration => crate::kubecontrollers::KubeControllersConfiguration,
    NetworkPolicy => crate::policy::NetworkPolicy,
    NetworkSet => crate::networkset::NetworkSet,
    Node => crate::node::Node,
    Profile => crate::profile::Profile,
    StagedGlobalNetworkPolicy => crate::policy::StagedGlobalNetworkPolicy,
    StagedKubernetesNetworkPolicy => crate::stagedk8spolicy::StagedKubernetesNetworkPolicy,
    StagedNetworkPolicy => crate::policy::StagedNetworkPolicy,
    Tier => crate::tier::Tier,
    WorkloadEndpoint => crate::workloadendpoint::WorkloadEndpoint,
}

impl Resource {
    /// Decodes one document (`{apiVersion, kind, metadata, spec}`), checking apiVersion and kind
    /// and rejecting unknown fields (calicoctl decodes strictly).
    pub fn from_json_value(value: serde_json::Value) -> Result<Resource, DecodeError> {
        let mut map = match value {
            serde_json::Value::Object(m) => m,
            other => return Err(DecodeError::NotAnObject(json_type_name(&other))),
        };
        match map.remove("apiVersion") {
            None => return Err(DecodeError::MissingApiVersion),
            Some(serde_json::Value::String(v)) if v == API_VERSION => {}
            Some(serde_json::Value::String(v)) => return Err(DecodeError::BadApiVersion(v)),
            Some(other) => return Err(DecodeError::BadApiVersion(other.to_string())),
        }
        let kind = match map.remove("kind") {
            None => return Err(DecodeError::MissingKind),
            Some(serde_json::Value::String(k)) => k,
            Some(other) => return Err(DecodeError::UnknownKind(other.to_string())),
        };
        Resource::decode_body(&kind, serde_json::Value::Object(map))
    }

    /// Full path check of metadata + spec after defaulting; convenience for callers that want
    /// "default then validate" in one step.
    pub fn defaulted_and_validated(mut self) -> Result<Resource, FieldErrors> {
        self.apply_defaults();
        self.validate()?;
        Ok(self)
    }

    /// `namespace/name` for namespaced kinds, `name` otherwise.
    pub fn display_name(&self) -> String {
        let m = self.metadata();
        if self.kind_info().namespaced && !m.namespace.is_empty() {
            format!("{}/{}", m.namespace, m.name)
        } else {
            m.name.clone()
        }
    }
}

pub(crate) fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Validates the metadata of a cluster-scoped kind: standard name rules and no namespace.
pub fn validate_cluster_scoped_meta(meta: &ObjectMeta, errs: &mut FieldErrors) {
    let path = FieldPath::root().field("metadata");
    meta.validate(&path, errs);
    if !meta.namespace.is_empty() {
        errs.push(
            &path.field("namespace"),
            "must be empty: this kind is not namespaced",
        );
    }
}

/// Validates the metadata of a namespaced kind: standard name rules and a DNS-1123 label
/// namespace (the namespace itself may be filled in from `-n`/the default before validation).
pub fn validate_namespaced_meta(meta: &ObjectMeta, errs: &mut FieldErrors) {
    let path = FieldPath::root().field("metadata");
    meta.validate(&path, errs);
    if !meta.namespace.is_empty() && !crate::validation::is_dns1123_label(&meta.namespace) {
        errs.push(
            &path.field("namespace"),
            format!(
                "namespace {:?} must be a lower case DNS-1123 label (regex: {})",
                meta.namespace,
                crate::validation::NAME_LABEL_FMT
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_kind_is_in_the_table() {
        for k in Resource::supported_kinds() {
            assert!(
                kinds::kind_info(k).is_some(),
                "{k} missing from kinds table"
            );
        }
    }

    #[test]
    fn api_version_and_kind_are_checked() {
        let v = serde_json::json!({"kind": "ClusterInformation", "metadata": {"name": "default"}});
        assert_eq!(
            Resource::from_json_value(v),
            Err(DecodeError::MissingApiVersion)
        );
        let v = serde_json::json!({"apiVersion": "v1", "kind": "ClusterInformation"});
        assert!(matches!(
            Resource::from_json_value(v),
            Err(DecodeError::BadApiVersion(_))
        ));
        let v = serde_json::json!({"apiVersion": API_VERSION, "kind": "Nope"});
        assert_eq!(
            Resource::from_json_value(v),
            Err(DecodeError::UnknownKind("Nope".into()))
        );
    }
}
