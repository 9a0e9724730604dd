//! The etcd v3 backend: [`Datastore`] on a real etcd cluster through `etcd-client` (gRPC).
//!
//! This is the datastore Calico's `etcdv3` mode uses (`libcalico-go/lib/backend/etcdv3`): the
//! trait's primitives map one-to-one onto etcd's KV, Watch and Lease APIs, so revisions,
//! compare-and-swap and watch resumption are etcd's own. What this module adds is the plumbing
//! Calico's Go client gets from `clientv3`: several endpoints with mutual TLS, request timeouts,
//! error classification, and watches that survive a broken connection (module `watch`).

mod config;
mod errors;
mod pool;
mod watch;

pub use config::{
    DEFAULT_DIAL_TIMEOUT, DEFAULT_KEEP_ALIVE_TIME, DEFAULT_KEEP_ALIVE_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT, ENV_CA_CERT_FILE, ENV_CERT_FILE, ENV_ENDPOINTS, ENV_KEY_FILE,
    ENV_PASSWORD, ENV_USERNAME, EtcdConfig,
};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client as ec;

use crate::{
    Compare, CompareOp, CompareTarget, Datastore, DatastoreError, KeyValue, LeaseId, RangeRequest,
    RangeResponse, Revision, Txn, TxnOp, TxnOpResult, TxnResponse, WatchRequest, WatchStream,
};
use errors::Ctx;
use pool::{Clients, Pool, Retry};

/// A [`Datastore`] backed by an etcd v3 cluster. Cheap to clone (clones share the connections).
#[derive(Clone)]
pub struct EtcdDatastore {
    pool: Arc<Pool>,
    config: EtcdConfig,
}

impl std::fmt::Debug for EtcdDatastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdDatastore")
            .field("endpoints", &self.config.endpoints)
            .field("tls", &self.config.uses_tls())
            .finish()
    }
}

impl EtcdDatastore {
    /// Connects to the cluster and checks that at least one member answers (a linearizable
    /// read) within `config.dial_timeout`, so a wrong address, a TLS problem (say, a missing
    /// client certificate) or bad credentials fail here with a message naming the endpoints,
    /// rather than on first use.
    pub async fn connect(config: EtcdConfig) -> Result<Self, DatastoreError> {
        config.validate()?;
        let endpoints = config.normalized_endpoints()?;
        let mut opts = ec::ConnectOptions::new()
            .with_connect_timeout(config.dial_timeout)
            .with_keep_alive(config.keep_alive_time, config.keep_alive_timeout)
            // A member cut off from its cluster then refuses requests ("etcdserver: no leader")
            // and cancels our watches instead of serving stale data, so we move to another.
            .with_require_leader(true);
        if config.uses_tls() {
            let material = config.tls_material()?;
            let mut tls = ec::TlsOptions::new();
            if let Some(ca) = material.ca {
                tls = tls.ca_certificate(ec::Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = material.identity {
                tls = tls.identity(ec::Identity::from_pem(cert, key));
            }
            opts = opts.with_tls(tls);
        }
        if let Some((user, password)) = config.credentials() {
            // Simple tokens expire after 5 minutes idle (`--auth-token-ttl`); re-authenticate
            // transparently like clientv3 does.
            opts = opts.with_user(user, password).with_auto_token_refresh(true);
        }
        let ds = EtcdDatastore {
            pool: Pool::new(endpoints.clone(), opts),
            config,
        };
        match ds.current_revision_within(ds.config.dial_timeout).await {
            Ok(_) => Ok(ds),
            Err(DatastoreError::Unavailable(m)) => {
                let hint = if !ds.config.has_client_cert()
                    && (m.contains("alert") || m.contains("certificate"))
                {
                    format!(
                        " (the TLS handshake failed; if etcd requires client certificates, set {ENV_CERT_FILE} and {ENV_KEY_FILE})"
                    )
                } else {
                    String::new()
                };
                Err(DatastoreError::Unavailable(format!(
                    "cannot reach etcd at {}: {m}{hint}",
                    endpoints.join(",")
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// Connects with [`EtcdConfig::from_env`] (Calico's `ETCD_*` variables).
    pub async fn connect_from_env() -> Result<Self, DatastoreError> {
        Self::connect(EtcdConfig::from_env()?).await
    }

    /// The configuration this store was connected with.
    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// Runs one unary call on the cluster with the request timeout, failing over between
    /// members as `retry` allows.
    async fn call<T, F, Fut>(&self, ctx: Ctx<'_>, retry: Retry, f: F) -> Result<T, DatastoreError>
    where
        F: Fn(Clients) -> Fut,
        Fut: Future<Output = Result<T, ec::Error>>,
    {
        self.pool
            .run(ctx, retry, self.config.request_timeout, f)
            .await
    }

    /// Where etcd's history starts. etcd has no call for it, but a watch from revision 1 is
    /// cancelled with the compaction revision when history was compacted.
    async fn compact_revision(&self) -> Result<Revision, DatastoreError> {
        let limit = self.config.dial_timeout;
        self.pool
            .run(
                Ctx::Op("compact revision"),
                Retry::Idempotent,
                limit,
                |mut c| async move {
                    let opts = ec::WatchOptions::new().with_start_revision(1);
                    let stream = c.watch.watch(b"\0".to_vec(), Some(opts)).await?;
                    let (_requests, mut responses) = stream.split();
                    while let Some(resp) = responses.message().await? {
                        if resp.compact_revision() > 0 || resp.canceled() {
                            return Ok(resp.compact_revision());
                        }
                        if !resp.created() {
                            // Events from revision 1 on: nothing was compacted.
                            return Ok(0);
                        }
                    }
                    Ok(0)
                },
            )
            .await
    }

    async fn current_revision_within(&self, limit: Duration) -> Result<Revision, DatastoreError> {
        // Any read carries the store revision in its header; a count-only read of one key
        // is the cheapest.
        let resp = self
            .pool
            .run(
                Ctx::Op("current revision"),
                Retry::Idempotent,
                limit,
                |mut c| async move {
                    c.kv.get(
                        b"\0".to_vec(),
                        Some(ec::GetOptions::new().with_count_only()),
                    )
                    .await
                },
            )
            .await?;
        header_revision(resp.header(), "current revision")
    }
}

fn header_revision(h: Option<&ec::ResponseHeader>, what: &str) -> Result<Revision, DatastoreError> {
    h.map(|h| h.revision())
        .ok_or_else(|| DatastoreError::Backend(format!("{what}: etcd response carried no header")))
}

/// Converts an etcd key-value; keys must be UTF-8 (ours always are).
pub(crate) fn convert_kv(kv: &ec::KeyValue) -> Result<KeyValue, DatastoreError> {
    let key = std::str::from_utf8(kv.key()).map_err(|_| {
        DatastoreError::Backend(format!(
            "etcd returned a key that is not UTF-8: {:?}",
            String::from_utf8_lossy(kv.key())
        ))
    })?;
    Ok(KeyValue {
        key: key.to_string(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: kv.lease(),
    })
}

fn convert_kvs(kvs: &[ec::KeyValue]) -> Result<Vec<KeyValue>, DatastoreError> {
    kvs.iter().map(convert_kv).collect()
}

fn check_key(what: &str, key: &str, prefix: bool) -> Result<(), DatastoreError> {
    if key.is_empty() && !prefix {
        return Err(DatastoreError::InvalidRequest(format!("{what}: empty key")));
    }
    Ok(())
}

fn get_options(what: &str, req: &RangeRequest) -> Result<ec::GetOptions, DatastoreError> {
    check_key(what, &req.key, req.prefix)?;
    if req.limit < 0 {
        return Err(DatastoreError::InvalidRequest(format!(
            "{what}: negative limit {}",
            req.limit
        )));
    }
    let mut o = ec::GetOptions::new();
    if req.prefix {
        // An empty prefix means every key: etcd-client turns it into the range ["\0", "\0").
        o = o.with_prefix();
    }
    if req.limit > 0 {
        o = o.with_limit(req.limit);
    }
    if req.count_only {
        o = o.with_count_only();
    }
    Ok(o)
}

fn range_response(
    resp: &ec::GetResponse,
    fallback_revision: Revision,
) -> Result<RangeResponse, DatastoreError> {
    let revision = resp
        .header()
        .map(|h| h.revision())
        .filter(|r| *r > 0)
        .unwrap_or(fallback_revision);
    Ok(RangeResponse {
        kvs: convert_kvs(resp.kvs())?,
        count: resp.count(),
        more: resp.more(),
        revision,
    })
}

fn convert_op(op: &CompareOp) -> ec::CompareOp {
    match op {
        CompareOp::Equal => ec::CompareOp::Equal,
        CompareOp::NotEqual => ec::CompareOp::NotEqual,
        CompareOp::Greater => ec::CompareOp::Greater,
        CompareOp::Less => ec::CompareOp::Less,
    }
}

fn convert_compare(c: &Compare) -> Result<ec::Compare, DatastoreError> {
    check_key("txn compare", &c.key, false)?;
    let op = convert_op(&c.op);
    let key = c.key.as_bytes().to_vec();
    Ok(match &c.target {
        CompareTarget::Version(v) => ec::Compare::version(key, op, *v),
        CompareTarget::CreateRevision(r) => ec::Compare::create_revision(key, op, *r),
        CompareTarget::ModRevision(r) => ec::Compare::mod_revision(key, op, *r),
        CompareTarget::Value(v) => ec::Compare::value(key, op, v.clone()),
        CompareTarget::Lease(l) => ec::Compare::lease(key, op, *l),
    })
}

fn convert_txn_op(op: &TxnOp) -> Result<ec::TxnOp, DatastoreError> {
    Ok(match op {
        TxnOp::Put {
            key,
            value,
            lease,
            prev_kv,
        } => {
            check_key("txn put", key, false)?;
            let mut o = ec::PutOptions::new();
            if let Some(l) = lease.filter(|l| *l != 0) {
                o = o.with_lease(l);
            }
            if *prev_kv {
                o = o.with_prev_key();
            }
            ec::TxnOp::put(key.as_bytes().to_vec(), value.clone(), Some(o))
        }
        TxnOp::Delete {
            key,
            prefix,
            prev_kv,
        } => {
            check_key("txn delete", key, *prefix)?;
            let mut o = ec::DeleteOptions::new();
            if *prefix {
                o = o.with_prefix();
            }
            if *prev_kv {
                o = o.with_prev_key();
            }
            ec::TxnOp::delete(key.as_bytes().to_vec(), Some(o))
        }
        TxnOp::Range(r) => {
            let o = get_options("txn range", r)?;
            ec::TxnOp::get(r.key.as_bytes().to_vec(), Some(o))
        }
    })
}

#[async_trait]
impl Datastore for EtcdDatastore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, DatastoreError> {
        let opts = get_options("range", &req)?;
        let key = req.key.as_bytes().to_vec();
        let resp = self
            .call(Ctx::Op("range"), Retry::Idempotent, |mut c| {
                let (key, opts) = (key.clone(), opts.clone());
                async move { c.kv.get(key, Some(opts)).await }
            })
            .await?;
        let rev = header_revision(resp.header(), "range")?;
        range_response(&resp, rev)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, DatastoreError> {
        let compare = txn
            .compare
            .iter()
            .map(convert_compare)
            .collect::<Result<Vec<_>, _>>()?;
        let success = txn
            .success
            .iter()
            .map(convert_txn_op)
            .collect::<Result<Vec<_>, _>>()?;
        let failure = txn
            .failure
            .iter()
            .map(convert_txn_op)
            .collect::<Result<Vec<_>, _>>()?;
        let read_only = txn
            .success
            .iter()
            .chain(&txn.failure)
            .all(|op| matches!(op, TxnOp::Range(_)));
        let req = ec::Txn::new()
            .when(compare)
            .and_then(success)
            .or_else(failure);
        let retry = if read_only {
            Retry::Idempotent
        } else {
            Retry::IfNotSent
        };
        // etcd refuses a put under an unknown lease with "requested lease not found"; name the
        // lease in the error as `LeaseNotFound`.
        let lease = txn
            .success
            .iter()
            .chain(&txn.failure)
            .find_map(|op| match op {
                TxnOp::Put { lease: Some(l), .. } if *l != 0 => Some(*l),
                _ => None,
            });
        let ctx = match lease {
            Some(l) => Ctx::Lease("txn", l),
            None => Ctx::Op("txn"),
        };
        let resp = self
            .call(ctx, retry, |mut c| {
                let req = req.clone();
                async move { c.kv.txn(req).await }
            })
            .await?;
        let revision = header_revision(resp.header(), "txn")?;
        let results = resp
            .op_responses()
            .iter()
            .map(|r| -> Result<TxnOpResult, DatastoreError> {
                Ok(match r {
                    ec::TxnOpResponse::Put(p) => TxnOpResult::Put {
                        prev_kv: p.prev_key().map(convert_kv).transpose()?,
                    },
                    ec::TxnOpResponse::Delete(d) => TxnOpResult::Delete {
                        deleted: d.deleted(),
                        prev_kvs: convert_kvs(d.prev_kvs())?,
                    },
                    ec::TxnOpResponse::Get(g) => TxnOpResult::Range(range_response(g, revision)?),
                    ec::TxnOpResponse::Txn(_) => {
                        return Err(DatastoreError::Backend(
                            "txn: etcd answered with a nested transaction we did not send".into(),
                        ));
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TxnResponse {
            succeeded: resp.succeeded(),
            revision,
            results,
        })
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream, DatastoreError> {
        watch::start(self.pool.clone(), self.config.dial_timeout, req).await
    }

    async fn lease_grant(&self, ttl_seconds: i64) -> Result<LeaseId, DatastoreError> {
        if ttl_seconds <= 0 {
            return Err(DatastoreError::InvalidRequest(format!(
                "lease grant: TTL must be positive, got {ttl_seconds}"
            )));
        }
        let resp = self
            .call(
                Ctx::Op("lease grant"),
                Retry::IfNotSent,
                |mut c| async move { c.lease.grant(ttl_seconds, None).await },
            )
            .await?;
        if !resp.error().is_empty() {
            return Err(DatastoreError::Backend(format!(
                "lease grant: {}",
                resp.error()
            )));
        }
        Ok(resp.id())
    }

    async fn lease_keep_alive(&self, lease_id: LeaseId) -> Result<i64, DatastoreError> {
        let ctx = Ctx::Lease("lease keep-alive", lease_id);
        // etcd-client opens a keep-alive stream and consumes the first answer itself (failing
        // with "lease not found" when its TTL is 0); a second ping tells us the TTL granted.
        let ttl = self
            .call(ctx, Retry::Idempotent, |mut c| async move {
                let (mut keeper, mut stream) = c.lease.keep_alive(lease_id).await?;
                keeper.keep_alive().await?;
                match stream.message().await? {
                    Some(resp) => Ok(resp.ttl()),
                    None => Err(ec::Error::LeaseKeepAliveError(
                        "keep-alive stream ended without an answer".into(),
                    )),
                }
            })
            .await?;
        if ttl <= 0 {
            return Err(DatastoreError::LeaseNotFound(lease_id));
        }
        Ok(ttl)
    }

    async fn lease_revoke(&self, lease_id: LeaseId) -> Result<(), DatastoreError> {
        self.call(
            Ctx::Lease("lease revoke", lease_id),
            Retry::IfNotSent,
            |mut c| async move { c.lease.revoke(lease_id).await },
        )
        .await?;
        Ok(())
    }

    async fn compact(&self, revision: Revision) -> Result<(), DatastoreError> {
        if revision <= 0 {
            return Err(DatastoreError::InvalidRequest(format!(
                "compact: revision must be positive, got {revision}"
            )));
        }
        let res = self
            .call(
                Ctx::Revision("compact", revision),
                Retry::IfNotSent,
                |mut c| async move { c.kv.compact(revision, None).await },
            )
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(DatastoreError::FutureRevision { requested, .. }) => {
                let current = self.current_revision().await?;
                Err(DatastoreError::FutureRevision { requested, current })
            }
            Err(DatastoreError::Compacted { requested, .. }) => Err(DatastoreError::Compacted {
                requested,
                compact_revision: self.compact_revision().await.unwrap_or(requested),
            }),
            Err(e) => Err(e),
        }
    }

    async fn current_revision(&self) -> Result<Revision, DatastoreError> {
        self.current_revision_within(self.config.request_timeout)
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_keys_are_rejected_before_sending() {
        assert!(matches!(
            get_options("range", &RangeRequest::key("")),
            Err(DatastoreError::InvalidRequest(_))
        ));
        assert!(get_options("range", &RangeRequest::prefix("")).is_ok());
        let neg = RangeRequest {
            key: "/a".into(),
            limit: -1,
            ..Default::default()
        };
        assert!(get_options("range", &neg).is_err());
        assert!(convert_txn_op(&TxnOp::put("", vec![], None)).is_err());
        assert!(convert_compare(&Compare::version("", CompareOp::Equal, 0)).is_err());
    }
}
