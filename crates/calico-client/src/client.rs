//! The typed client: CRUD, list and watch of `projectcalico.org/v3` resources over any
//! [`Datastore`], with libcalico-go's `clientv3` semantics (`libcalico-go/lib/clientv3/
//! resources.go`) and calicoctl's create/apply/replace rules on top
//! (`calicoctl/calicoctl/resourcemgr/resourcemgr.go`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use calico_api::{CalicoResource, KindInfo, Resource};
use calico_datastore::{Datastore, EventKind, Revision, WatchRequest, WatchStream};

use crate::codec::{self, decode_stored, encode_for_storage, to_calico_json};
use crate::error::ClientError;
use crate::keys::{identifier, list_prefix, parse_key, resource_key};
use crate::rules;

/// How often calicoctl's update without a resourceVersion retries after a conflict
/// (`resourcemgr.go Update`: 5 attempts).
const UPDATE_ATTEMPTS: usize = 5;
/// Pause between those attempts (calicoctl sleeps 1 s; a shorter pause keeps scripts fast and
/// still lets a concurrent writer finish).
const UPDATE_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Resolves a `kind:` name (e.g. `IPPool`) to its table row.
pub fn kind_of(kind: &str) -> Result<&'static KindInfo, ClientError> {
    calico_api::kind_info(kind).ok_or_else(|| ClientError::UnknownKind(kind.to_string()))
}

fn supported(kind: &str) -> Result<&'static KindInfo, ClientError> {
    let ki = kind_of(kind)?;
    if !Resource::supports_kind(ki.kind) {
        return Err(ClientError::UnsupportedKind(ki.kind.to_string()));
    }
    Ok(ki)
}

/// Parses a `resourceVersion` string (decimal etcd revision), as Calico's `parseRevision`.
pub fn parse_resource_version(rv: &str) -> Result<Revision, ClientError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ClientError::InvalidField {
            field: "ResourceVersion".into(),
            value: Some(rv.to_string()),
            reason: "must be a decimal datastore revision".into(),
        })
}

/// Every object of one kind, as `List` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceList {
    pub kind: &'static KindInfo,
    pub items: Vec<Resource>,
    /// The datastore revision the list was read at (the list's `resourceVersion`); watch from
    /// here to see what follows.
    pub revision: Revision,
}

impl ResourceList {
    /// The `<Kind>List` object calicoctl prints (`kind`, `apiVersion`, `metadata.resourceVersion`,
    /// `items`).
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind.list_kind,
            "apiVersion": calico_api::API_VERSION,
            "metadata": { "resourceVersion": self.revision.to_string() },
            "items": self.items.iter().map(to_calico_json).collect::<Vec<_>>(),
        })
    }
}

/// What happened to an object (libcalico-go `watch.EventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change seen by a [`ResourceWatch`].
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceEvent {
    pub event_type: EventType,
    /// The new object (absent for deletes).
    pub object: Option<Resource>,
    /// The object before the change (for modifications and deletes).
    pub previous: Option<Resource>,
    /// The revision of the change.
    pub revision: Revision,
}

/// A watch of one kind (optionally one namespace). Dropping it cancels the watch.
pub struct ResourceWatch {
    kind: &'static KindInfo,
    namespace: Option<String>,
    stream: WatchStream,
    pending: VecDeque<ResourceEvent>,
}

impl ResourceWatch {
    /// The next change, an error after which the watch is over (e.g. the start revision was
    /// compacted: list again and watch from the list's revision + 1), or `None` at the end.
    pub async fn next(&mut self) -> Option<Result<ResourceEvent, ClientError>> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(Ok(ev));
            }
            let batch = match self.stream.next().await? {
                Ok(b) => b,
                Err(e) => return Some(Err(ClientError::Datastore(e))),
            };
            for ev in batch {
                let Some((ns, _)) = parse_key(self.kind, &ev.kv.key) else {
                    continue;
                };
                if let Some(want) = &self.namespace
                    && self.kind.namespaced
                    && ns != want
                {
                    continue;
                }
                let previous = match &ev.prev_kv {
                    Some(p) => match decode_stored(self.kind, p) {
                        Ok(r) => Some(r),
                        Err(e) => return Some(Err(e)),
                    },
                    None => None,
                };
                let converted = match ev.kind {
                    EventKind::Delete => ResourceEvent {
                        event_type: EventType::Deleted,
                        object: None,
                        previous,
                        revision: ev.kv.mod_revision,
                    },
                    EventKind::Put => {
                        let object = match decode_stored(self.kind, &ev.kv) {
                            Ok(r) => r,
                            Err(e) => return Some(Err(e)),
                        };
                        ResourceEvent {
                            event_type: if ev.kv.create_revision == ev.kv.mod_revision {
                                EventType::Added
                            } else {
                                EventType::Modified
                            },
                            object: Some(object),
                            previous,
                            revision: ev.kv.mod_revision,
                        }
                    }
                };
                self.pending.push_back(converted);
            }
        }
    }
}

/// Typed access to Calico resources in a datastore.
#[derive(Clone)]
pub struct Client {
    ds: Arc<dyn Datastore>,
}

impl Client {
    pub fn new(ds: Arc<dyn Datastore>) -> Self {
        Client { ds }
    }

    /// The datastore underneath (for IPAM and other raw-key users).
    pub fn datastore(&self) -> &Arc<dyn Datastore> {
        &self.ds
    }

    /// Creates `res` (libcalico-go `Create`): defaults, Calico's per-kind checks and validation,
    /// then an atomic create. The name must be set and resourceVersion must not be;
    /// creationTimestamp and uid are filled in when absent. Returns the stored object with its
    /// new resourceVersion.
    pub async fn create(&self, mut res: Resource) -> Result<Resource, ClientError> {
        let ki = supported(res.kind())?;
        // Kind rules first: Calico's per-kind wrappers run before the generic create checks
        // (e.g. creating `projectcalico-default-allow` is "already exists" whatever it carries).
        rules::before_create(self, &mut res).await?;
        let meta = res.metadata();
        if meta.name.is_empty() {
            let note = if meta.generate_name.is_empty() {
                ""
            } else {
                " (GenerateName is not supported)"
            };
            return Err(ClientError::InvalidField {
                field: "Metadata.Name".into(),
                value: Some(String::new()),
                reason: format!("field must be set for a Create request{note}"),
            });
        }
        if !meta.resource_version.is_empty() {
            return Err(ClientError::InvalidField {
                field: "Metadata.ResourceVersion".into(),
                value: Some(meta.resource_version.clone()),
                reason: "field must not be set for a Create request".into(),
            });
        }
        check_namespace(ki, &meta.namespace)?;
        res.apply_defaults();
        res.validate().map_err(ClientError::Invalid)?;
        rules::after_validate_create(self, &res).await?;

        let meta = res.metadata_mut();
        if meta.creation_timestamp.as_deref().unwrap_or("").is_empty() {
            meta.creation_timestamp = Some(now_rfc3339());
        }
        if meta.uid.is_empty() {
            meta.uid = uuid::Uuid::new_v4().to_string();
        }
        let key = resource_key(ki, &meta.namespace, &meta.name);
        let id = identifier(ki, &meta.namespace, &meta.name);
        tracing::debug!(%key, "creating resource");
        let rev = self
            .ds
            .create(&key, encode_for_storage(&res), None)
            .await
            .map_err(|e| ClientError::from_datastore(e, &id))?;
        Ok(stored_form(res, rev))
    }

    /// Replaces `res` if its resourceVersion is still the stored one (libcalico-go `Update`).
    /// resourceVersion, creationTimestamp and uid must be set (they are when `res` came from a
    /// read). A stale resourceVersion fails with `update conflict`.
    pub async fn update(&self, mut res: Resource) -> Result<Resource, ClientError> {
        let ki = supported(res.kind())?;
        rules::before_update(self, &mut res).await?;
        let meta = res.metadata();
        if meta.resource_version.is_empty() {
            return Err(ClientError::InvalidField {
                field: "Metadata.ResourceVersion".into(),
                value: Some(String::new()),
                reason: "field must be set for an Update request".into(),
            });
        }
        check_namespace(ki, &meta.namespace)?;
        if meta.creation_timestamp.as_deref().unwrap_or("").is_empty() {
            return Err(ClientError::InvalidField {
                field: "Metadata.CreationTimestamp".into(),
                value: None,
                reason: "field must be set for an Update request".into(),
            });
        }
        if meta.uid.is_empty() {
            return Err(ClientError::InvalidField {
                field: "Metadata.UID".into(),
                value: Some(String::new()),
                reason: "field must be set for an Update request".into(),
            });
        }
        let expected = parse_resource_version(&meta.resource_version)?;
        res.apply_defaults();
        res.validate().map_err(ClientError::Invalid)?;
        let meta = res.metadata();
        let key = resource_key(ki, &meta.namespace, &meta.name);
        let id = identifier(ki, &meta.namespace, &meta.name);
        tracing::debug!(%key, expected, "updating resource");
        let rev = self
            .ds
            .update(&key, encode_for_storage(&res), expected, None)
            .await
            .map_err(|e| ClientError::from_datastore(e, &id))?;
        Ok(stored_form(res, rev))
    }

    /// Deletes one object, only if it is still at `resource_version` when one is given
    /// (libcalico-go `Delete` with `DeleteOptions.ResourceVersion`). Returns what was deleted.
    pub async fn delete(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<Resource, ClientError> {
        let ki = supported(kind)?;
        check_namespace(ki, namespace)?;
        let expected = match resource_version {
            Some(rv) if !rv.is_empty() => Some(parse_resource_version(rv)?),
            _ => None,
        };
        rules::before_delete(self, ki, namespace, name).await?;
        let key = resource_key(ki, namespace, name);
        let id = identifier(ki, namespace, name);
        tracing::debug!(%key, ?expected, "deleting resource");
        let kv = self
            .ds
            .delete(&key, expected)
            .await
            .map_err(|e| ClientError::from_datastore(e, &id))?;
        match decode_stored(ki, &kv) {
            Ok(res) => Ok(res),
            // The key is gone: a value nobody can parse must not turn a done delete into a
            // reported failure (Calico's etcdv3 `DeleteKVP`: "Don't propagate the error in this
            // case since the delete did succeed"). Deleting is the way to clear such an entry;
            // the caller gets the identity of what was deleted.
            Err(e) => {
                tracing::warn!(%key, error = %e, "deleted an entry whose value could not be parsed");
                let mut meta = serde_json::json!({
                    "name": name,
                    "resourceVersion": kv.mod_revision.to_string(),
                });
                if ki.namespaced {
                    meta["namespace"] = serde_json::Value::from(namespace);
                }
                Resource::decode_body(ki.kind, serde_json::json!({ "metadata": meta }))
                    .map_err(|_| e)
            }
        }
    }

    /// Reads one object; its resourceVersion is the key's ModRevision.
    pub async fn get(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Resource, ClientError> {
        let ki = supported(kind)?;
        check_namespace(ki, namespace)?;
        if let Some(virt) = rules::virtual_get(ki, name) {
            return Ok(virt);
        }
        let key = resource_key(ki, namespace, name);
        match self.ds.get(&key).await? {
            Some(kv) => decode_stored(ki, &kv),
            None => Err(ClientError::DoesNotExist {
                id: identifier(ki, namespace, name),
                reason: None,
            }),
        }
    }

    /// Lists a kind: one namespace, or every namespace when `namespace` is `None` (or the kind
    /// is cluster-scoped). Items come in key order (namespace, then name).
    pub async fn list(
        &self,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<ResourceList, ClientError> {
        let ki = supported(kind)?;
        let resp = self.ds.list(&list_prefix(ki, namespace)).await?;
        let mut items = Vec::with_capacity(resp.kvs.len());
        for kv in &resp.kvs {
            // Keys of other shapes under the prefix are skipped, as Calico's list does.
            if parse_key(ki, &kv.key).is_none() {
                continue;
            }
            items.push(decode_stored(ki, kv)?);
        }
        items.extend(rules::virtual_list(ki));
        Ok(ResourceList {
            kind: ki,
            items,
            revision: resp.revision,
        })
    }

    /// Watches a kind from `resource_version` (exclusive, as a Kubernetes/Calico watch from a
    /// list's resourceVersion is) or from now when `None`.
    pub async fn watch(
        &self,
        kind: &str,
        namespace: Option<&str>,
        resource_version: Option<&str>,
    ) -> Result<ResourceWatch, ClientError> {
        let ki = supported(kind)?;
        let start =
            match resource_version {
                // The revision after `rv`; the largest revision has no successor to watch from.
                Some(rv) if !rv.is_empty() => parse_resource_version(rv)?
                    .checked_add(1)
                    .ok_or_else(|| ClientError::InvalidField {
                        field: "ResourceVersion".into(),
                        value: Some(rv.to_string()),
                        reason: "is the largest revision; there is nothing after it to watch"
                            .into(),
                    })?,
                _ => 0,
            };
        let mut req = WatchRequest::prefix(&list_prefix(ki, namespace), start);
        req.prev_kv = true;
        let stream = self.ds.watch(req).await?;
        Ok(ResourceWatch {
            kind: ki,
            namespace: namespace.filter(|n| !n.is_empty()).map(str::to_string),
            stream,
            pending: VecDeque::new(),
        })
    }

    /// [`Client::get`] returning the concrete kind type (e.g. `calico_api::ippool::IPPool`).
    pub async fn get_as<T: CalicoResource>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<T, ClientError> {
        into_kind(self.get(T::KIND, namespace, name).await?)
    }

    /// [`Client::list`] returning the concrete kind type and the list revision.
    pub async fn list_as<T: CalicoResource>(
        &self,
        namespace: Option<&str>,
    ) -> Result<(Vec<T>, Revision), ClientError> {
        let list = self.list(T::KIND, namespace).await?;
        let items = list
            .items
            .into_iter()
            .map(into_kind)
            .collect::<Result<Vec<T>, _>>()?;
        Ok((items, list.revision))
    }

    // ---- calicoctl semantics (resourcemgr.go) ----

    /// calicoctl's `create`: the object's metadata is reduced to what a user may set (name,
    /// namespace, resourceVersion, labels, annotations; `prepareMetadataForCreate`), then
    /// created. A resourceVersion in the manifest is therefore refused.
    pub async fn create_from_manifest(&self, mut res: Resource) -> Result<Resource, ClientError> {
        let m = res.metadata().clone();
        *res.metadata_mut() = calico_api::ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            resource_version: m.resource_version,
            labels: m.labels,
            annotations: m.annotations,
            ..Default::default()
        };
        self.create(res).await
    }

    /// calicoctl's `apply`: create, and if the object exists (or the kind refuses creation of
    /// this name) update it instead. A resourceVersion in the manifest is used for the update's
    /// compare-and-swap. ClusterInformation is read-only to apply.
    pub async fn apply(&self, mut res: Resource) -> Result<Resource, ClientError> {
        if res.kind() == "ClusterInformation" {
            return Err(ClientError::OperationNotSupported {
                operation: "apply".into(),
                id: "ClusterInformation".into(),
                reason: Some("resource is readonly".into()),
            });
        }
        let original_rv = std::mem::take(&mut res.metadata_mut().resource_version);
        match self.create_from_manifest(res.clone()).await {
            Err(e) if e.is_already_exists() || e.is_not_supported() => {
                res.metadata_mut().resource_version = original_rv;
                self.replace(res).await
            }
            other => other,
        }
    }

    /// calicoctl's `replace` (its resource manager's `Update`): the object must exist. With a
    /// resourceVersion, it must equal the stored one (else `update conflict`, naming both
    /// versions); without one, the current version is read and the update retried on conflict.
    /// Stored metadata (uid, creationTimestamp, ...) is kept; labels and annotations come from
    /// `res`.
    pub async fn replace(&self, res: Resource) -> Result<Resource, ClientError> {
        let ki = supported(res.kind())?;
        let (ns, name) = (
            res.metadata().namespace.clone(),
            res.metadata().name.clone(),
        );
        let rv = res.metadata().resource_version.clone();
        if !rv.is_empty() {
            let stored = self.get(ki.kind, &ns, &name).await?;
            let latest = &stored.metadata().resource_version;
            if &rv != latest {
                return Err(ClientError::UpdateConflict {
                    id: identifier(ki, &ns, &name),
                    reason: Some(format!(
                        "resource version '{rv}' is out of date (latest: {latest}). Update the \
                         resource YAML/JSON in order to make changes"
                    )),
                });
            }
            return self.update(merge_metadata_for_update(&stored, res)).await;
        }
        let mut last_err = None;
        for attempt in 0..UPDATE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(UPDATE_RETRY_PAUSE).await;
            }
            let stored = self.get(ki.kind, &ns, &name).await?;
            match self
                .update(merge_metadata_for_update(&stored, res.clone()))
                .await
            {
                Err(e) if e.is_conflict() => last_err = Some(e),
                other => return other,
            }
        }
        Err(last_err.unwrap_or_else(|| ClientError::UpdateConflict {
            id: identifier(ki, &ns, &name),
            reason: None,
        }))
    }

    /// Reads an object, applies a patch to its JSON form and updates it with the read
    /// resourceVersion (calicoctl `patch`), so a concurrent change fails with a conflict rather
    /// than being overwritten.
    pub async fn patch(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        patch: &crate::patch::Patch,
    ) -> Result<Resource, ClientError> {
        let stored = self.get(kind, namespace, name).await?;
        let original = stored.to_json_value();
        let patched = patch.apply(original)?;
        let mut res = Resource::from_json_value(patched).map_err(|e| {
            ClientError::Config(format!("creating resource from patched data: {e}"))
        })?;
        if res.kind() != stored.kind()
            || res.metadata().name != stored.metadata().name
            || res.metadata().namespace != stored.metadata().namespace
        {
            return Err(ClientError::Config(
                "a patch may not change the kind, name or namespace of a resource".into(),
            ));
        }
        if res.metadata().resource_version.is_empty() {
            res.metadata_mut().resource_version = stored.metadata().resource_version.clone();
        }
        self.update(res).await
    }

    /// libcalico-go `EnsureInitialized`: makes sure the `default` ClusterInformation exists (with
    /// a cluster GUID, `datastoreReady: true`, and the given version/type merged in) and that
    /// the built-in tiers `default`, `kube-admin` and `kube-baseline` exist. Idempotent; does
    /// all it can and returns the first error. calicoctl calls it before create/apply/replace.
    pub async fn ensure_initialized(
        &self,
        calico_version: &str,
        cluster_type: &str,
    ) -> Result<(), ClientError> {
        let mut first_err = None;
        if let Err(e) = rules::ensure_cluster_information(self, calico_version, cluster_type).await
        {
            first_err.get_or_insert(e);
        }
        if Resource::supports_kind("Tier") {
            for (name, action, order) in rules::BUILTIN_TIERS {
                if let Err(e) = rules::ensure_tier(self, name, action, order).await {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Converts a resource into its concrete kind type.
pub fn into_kind<T: CalicoResource>(res: Resource) -> Result<T, ClientError> {
    if res.kind() != T::KIND {
        return Err(ClientError::KindMismatch {
            expected: T::KIND.to_string(),
            found: res.kind().to_string(),
        });
    }
    let mut v = res.to_json_value();
    if let serde_json::Value::Object(m) = &mut v {
        m.remove("apiVersion");
        m.remove("kind");
    }
    calico_api::resource::decode_kind::<T>(v).map_err(|e| ClientError::KindMismatch {
        expected: T::KIND.to_string(),
        found: format!("an object that does not decode as it ({e})"),
    })
}

/// `checkNamespace`: namespaced kinds need one.
fn check_namespace(ki: &KindInfo, namespace: &str) -> Result<(), ClientError> {
    if ki.namespaced && namespace.is_empty() {
        return Err(ClientError::InvalidField {
            field: "Metadata.Namespace".into(),
            value: None,
            reason: "namespace is not specified on namespaced resource".into(),
        });
    }
    Ok(())
}

/// What a read right after the write would return: the new resourceVersion, no selfLink, and
/// the policy tier label Calico adds on read.
fn stored_form(mut res: Resource, rev: Revision) -> Resource {
    if codec::is_policy_kind(res.kind()) {
        let tier = codec::policy_tier(&res);
        res.metadata_mut()
            .labels
            .entry(codec::TIER_LABEL.into())
            .or_insert(tier);
    }
    let meta = res.metadata_mut();
    meta.self_link.clear();
    meta.resource_version = rev.to_string();
    res
}

/// `mergeMetadataForUpdate`: the stored metadata, with labels and annotations from the new
/// object.
fn merge_metadata_for_update(stored: &Resource, mut new: Resource) -> Resource {
    let mut meta = stored.metadata().clone();
    let m = new.metadata_mut();
    meta.labels = std::mem::take(&mut m.labels);
    meta.annotations = std::mem::take(&mut m.annotations);
    *m = meta;
    new
}

/// Kubernetes `metav1.Time` JSON form: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
