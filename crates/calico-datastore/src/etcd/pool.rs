//! One gRPC client per etcd member, with failover between them.
//!
//! etcd-client balances requests over all endpoints with tonic's power-of-two-choices
//! balancer, which happily picks a member that refuses connections and fails the request
//! ("tcp connect error") instead of using a live one. Calico's Go client (clientv3) only sends
//! to connected members. We get the same effect by keeping a client per member, sending to the
//! member that answered last, and moving to the next member when a request could not be
//! delivered. Members are connected lazily, so a dead member costs nothing until it is tried.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client as ec;
use tokio::sync::{OnceCell, watch};

use super::errors::{Ctx, map_err};
use crate::DatastoreError;

/// Largest gRPC message we accept: etcd's Go client default (`MaxCallRecvMsgSize` =
/// `math.MaxInt32`). tonic's 4 MiB default would make big listings and watch catch-up batches
/// fail to decode (and a watch would then retry the same batch forever).
const MAX_DECODING_MESSAGE_SIZE: usize = i32::MAX as usize;

/// The per-service clients of one member (they share one HTTP/2 connection).
#[derive(Clone)]
pub(crate) struct Clients {
    pub kv: ec::KvClient,
    pub watch: ec::WatchClient,
    pub lease: ec::LeaseClient,
}

struct Member {
    endpoint: String,
    clients: OnceCell<Clients>,
}

pub(crate) struct Pool {
    members: Vec<Member>,
    options: ec::ConnectOptions,
    /// Index of the member that answered last; requests start there.
    preferred: AtomicUsize,
    /// Never sent on: dropping it (with the pool, when the last store handle goes) tells the
    /// watch tasks to end.
    shutdown: watch::Sender<()>,
}

/// Whether a failed request may be sent again to another member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reads: any availability failure may be retried elsewhere.
    Idempotent,
    /// Writes: only when the request provably never left (the connection could not be made).
    IfNotSent,
}

impl Pool {
    pub(crate) fn new(endpoints: Vec<String>, options: ec::ConnectOptions) -> Arc<Self> {
        Arc::new(Pool {
            members: endpoints
                .into_iter()
                .map(|endpoint| Member {
                    endpoint,
                    clients: OnceCell::new(),
                })
                .collect(),
            options,
            preferred: AtomicUsize::new(0),
            shutdown: watch::Sender::new(()),
        })
    }

    /// A receiver whose `changed()` fails once the pool is gone.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<()> {
        self.shutdown.subscribe()
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn endpoint(&self, idx: usize) -> &str {
        &self.members[idx % self.members.len()].endpoint
    }

    pub(crate) fn preferred(&self) -> usize {
        self.preferred.load(Ordering::Relaxed) % self.members.len()
    }

    /// Moves the preference off `idx` (after it failed), unless another task already did.
    pub(crate) fn demote(&self, idx: usize) {
        let n = self.members.len();
        let _ = self.preferred.compare_exchange(
            idx % n,
            (idx + 1) % n,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    pub(crate) fn promote(&self, idx: usize) {
        self.preferred
            .store(idx % self.members.len(), Ordering::Relaxed);
    }

    /// The clients of member `idx`, connecting (and authenticating, with credentials) on first
    /// use.
    pub(crate) async fn clients(
        &self,
        idx: usize,
        limit: Duration,
    ) -> Result<Clients, DatastoreError> {
        let member = &self.members[idx % self.members.len()];
        let connect = async {
            let client =
                ec::Client::connect([member.endpoint.as_str()], Some(self.options.clone())).await?;
            Ok::<_, ec::Error>(Clients {
                kv: client
                    .kv_client()
                    .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE),
                watch: client
                    .watch_client()
                    .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE),
                lease: client.lease_client(),
            })
        };
        member
            .clients
            .get_or_try_init(|| timed(limit, Ctx::Op("connect"), connect))
            .await
            .cloned()
    }

    /// Runs `call` on the preferred member, failing over to the others as `retry` allows.
    /// Each attempt is bounded by `limit`. When every member fails, the error lists each
    /// member's failure.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        ctx: Ctx<'_>,
        retry: Retry,
        limit: Duration,
        call: F,
    ) -> Result<T, DatastoreError>
    where
        F: Fn(Clients) -> Fut,
        Fut: Future<Output = Result<T, ec::Error>>,
    {
        let n = self.members.len();
        let start = self.preferred();
        let mut failures: Vec<String> = Vec::new();
        for i in 0..n {
            let idx = (start + i) % n;
            let endpoint = &self.members[idx].endpoint;
            let clients = match self.clients(idx, limit).await {
                Ok(c) => c,
                Err(DatastoreError::Unavailable(m)) => {
                    self.demote(idx);
                    failures.push(format!("{endpoint}: {m}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let outcome = match tokio::time::timeout(limit, call(clients)).await {
                Ok(Ok(v)) => {
                    self.promote(idx);
                    return Ok(v);
                }
                Ok(Err(e)) => {
                    let not_sent = never_sent(&e);
                    (map_err(e, ctx), not_sent)
                }
                Err(_) => (
                    DatastoreError::Unavailable(format!(
                        "{}: no answer within {limit:?}",
                        ctx_name(ctx)
                    )),
                    false,
                ),
            };
            match outcome {
                (DatastoreError::Unavailable(m), not_sent)
                    if retry == Retry::Idempotent || not_sent =>
                {
                    self.demote(idx);
                    failures.push(format!("{endpoint}: {m}"));
                }
                (DatastoreError::Unavailable(m), _) => {
                    self.demote(idx);
                    return Err(DatastoreError::Unavailable(format!("{endpoint}: {m}")));
                }
                (e, _) => return Err(e),
            }
        }
        Err(DatastoreError::Unavailable(failures.join("; ")))
    }
}

pub(crate) fn ctx_name(ctx: Ctx<'_>) -> &str {
    match ctx {
        Ctx::Op(w) | Ctx::Revision(w, _) | Ctx::Lease(w, _) => w,
    }
}

pub(crate) async fn timed<T, F>(limit: Duration, ctx: Ctx<'_>, fut: F) -> Result<T, DatastoreError>
where
    F: Future<Output = Result<T, ec::Error>>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(|e| map_err(e, ctx)),
        Err(_) => Err(DatastoreError::Unavailable(format!(
            "{}: no answer from etcd within {limit:?}",
            ctx_name(ctx)
        ))),
    }
}

/// Whether the request failed before reaching the member's raft log: the TCP connection or the
/// TLS handshake could not be made, or the member refused it up front for having no leader
/// (etcd checks the require-leader flag before handling a request). Such a request can be sent
/// elsewhere even if it writes.
fn never_sent(e: &ec::Error) -> bool {
    let text = match e {
        ec::Error::TransportError(_) | ec::Error::IoError(_) => return true,
        ec::Error::GRpcStatus(s) => {
            let mut t = s.message().to_string();
            let mut src = std::error::Error::source(s);
            while let Some(x) = src {
                t.push_str(": ");
                t.push_str(&x.to_string());
                src = x.source();
            }
            t
        }
        _ => return false,
    };
    let text = text.to_ascii_lowercase();
    [
        "tcp connect error",
        "error trying to connect",
        "connection refused",
        "connect timeout",
        "dns error",
        "fatal alert",
        "invalid peer certificate",
        "etcdserver: no leader",
    ]
    .iter()
    .any(|k| text.contains(k))
}
