//! The node's IPAM service: `calico_ipam::NodeAllocator` (the batching allocator of this node)
//! behind the `calico-ipam-rpc` socket, so the local CNI plugin's requests are served from the
//! node's affine blocks and a burst of pods is persisted in a few transactions instead of
//! racing each other (Calico's plugin serialises them behind `/var/run/calico/ipam.lock`).

use std::net::IpAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use calico_datastore::Datastore;
use calico_ipam::{
    AssignArgs, AutoAssignArgs, BatchConfig, DatastoreResources, IntendedUse, IpamClient,
    IpamError, NodeAllocator, ReleaseOptions,
};
use calico_ipam_rpc::{AssignIpsRequest, AssignRequest, Assigned, IpamBackend, RemoteError, codes};
use ipnet::IpNet;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("IPAM socket {path}: {reason}")]
    Socket { path: PathBuf, reason: String },
    #[error("starting the node allocator: {0}")]
    Allocator(#[source] IpamError),
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpOnly {
    op: &'static str,
}

/// The service's metrics (`calico_node_ipam_*`).
#[derive(Clone)]
struct Metrics {
    requests: Family<OpLabels, Counter>,
    latency: Family<OpOnly, Histogram>,
}

impl Metrics {
    fn new(registry: &mut Registry) -> Self {
        let requests = Family::<OpLabels, Counter>::default();
        let latency = Family::<OpOnly, Histogram>::new_with_constructor(|| {
            // 100 µs … ~3 s: an answer from the in-memory batch to a slow etcd commit.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0001, 2.0, 16,
            ))
        });
        registry.register(
            "calico_node_ipam_requests",
            "IPAM socket requests answered, by operation and result code",
            requests.clone(),
        );
        registry.register(
            "calico_node_ipam_request_seconds",
            "Time to answer an IPAM socket request, by operation",
            latency.clone(),
        );
        Metrics { requests, latency }
    }

    fn observe<T>(&self, op: &'static str, start: Instant, r: &Result<T, RemoteError>) {
        let result = match r {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code.clone(),
        };
        self.requests.get_or_create(&OpLabels { op, result }).inc();
        self.latency
            .get_or_create(&OpOnly { op })
            .observe(start.elapsed().as_secs_f64());
    }
}

/// [`IpamBackend`] over this node's batching allocator; specific addresses (`IP=` in the
/// plugin's `CNI_ARGS`) go to the IPAM client directly, since the batch only auto-assigns.
/// Both write the same records under compare-and-swap, so they cannot hand out one address
/// twice: whichever commits second re-reads and sees the other's allocation.
pub struct IpamService {
    node: String,
    allocator: NodeAllocator,
    client: IpamClient,
    metrics: Metrics,
}

impl IpamService {
    /// Starts the node's allocator (on the current tokio runtime) over `store`.
    pub fn new(
        store: Arc<dyn Datastore>,
        node: &str,
        registry: &mut Registry,
    ) -> Result<IpamService, ServiceError> {
        let resources = Arc::new(DatastoreResources::new(store.clone()));
        let client = IpamClient::new(store, resources);
        let allocator = NodeAllocator::new(client.clone(), node, BatchConfig::default())
            .map_err(ServiceError::Allocator)?;
        Ok(IpamService {
            node: node.to_string(),
            allocator,
            client,
            metrics: Metrics::new(registry),
        })
    }

    /// Calico's `AssignIP` for each requested address in turn, as the `calico-ipam` plugin
    /// does for `IP=` (ipam_plugin.go: the handle, the attributes, this node as hostname and
    /// the workload use, so a pool's `allowedUses` is enforced). On the first failure the
    /// addresses already assigned for this request are released again (under the handle, so
    /// nothing someone else holds is touched) and that failure is returned: nothing is held.
    async fn assign_specific(&self, req: &AssignIpsRequest) -> Result<Assigned, RemoteError> {
        let mut done: Vec<IpAddr> = Vec::with_capacity(req.ips.len());
        for ip in &req.ips {
            let args = AssignArgs {
                ip: *ip,
                handle_id: Some(req.handle_id.clone()),
                attrs: req.attrs.clone(),
                hostname: self.node.clone(),
                host_reserved: None,
                intended_use: Some(IntendedUse::Workload),
            };
            if let Err(e) = self.client.assign_ip(&args).await {
                let mut err = remote(e);
                if !done.is_empty()
                    && let Err(undo) = self.release_assigned(&done, &req.handle_id).await
                {
                    tracing::error!(handle = %req.handle_id, ips = ?done, error = %undo,
                        "could not release the addresses of a failed specific-address request");
                    err.message = format!(
                        "{}; releasing the addresses already assigned ({}) failed too: {undo}",
                        err.message,
                        done.iter()
                            .map(IpAddr::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
                return Err(err);
            }
            done.push(*ip);
        }
        let mut out = Assigned::default();
        for ip in done {
            match ip {
                IpAddr::V4(_) => out.ipv4.push(IpNet::from(ip)),
                IpAddr::V6(_) => out.ipv6.push(IpNet::from(ip)),
            }
        }
        Ok(out)
    }

    async fn release_assigned(&self, ips: &[IpAddr], handle: &str) -> Result<(), IpamError> {
        let opts: Vec<ReleaseOptions> = ips
            .iter()
            .map(|ip| {
                let mut o = ReleaseOptions::address(*ip);
                o.handle = Some(handle.to_string());
                o
            })
            .collect();
        self.client.release_ips(&opts).await.map(|_| ())
    }

    /// The allocator (for its statistics, and to settle before shutdown).
    pub fn allocator(&self) -> &NodeAllocator {
        &self.allocator
    }
}

/// The stable error code of an IPAM failure (see `calico_ipam_rpc::codes`).
pub fn error_code(e: &IpamError) -> &'static str {
    match e {
        IpamError::Exhausted { .. } => codes::POOL_EXHAUSTED,
        IpamError::PoolNotFound(_)
        | IpamError::NoPoolsForNode(_)
        | IpamError::NoQualifiedPool(_)
        | IpamError::NotInPool(_)
        | IpamError::CidrNotInPool(_) => codes::NO_POOL,
        IpamError::BlockLimit { .. } => codes::BLOCK_LIMIT,
        IpamError::BadHandle { .. } | IpamError::BadSequenceNumber { .. } => codes::STALE_RELEASE,
        IpamError::Datastore(_) | IpamError::MaxRetries(_) => codes::DATASTORE,
        IpamError::InvalidArgument(m) if m.contains("stopped") => codes::UNAVAILABLE,
        IpamError::AlreadyAssigned(_) => codes::ADDRESS_IN_USE,
        IpamError::InvalidArgument(_)
        | IpamError::UseNotAllowed { .. }
        | IpamError::AffinityMismatch { .. }
        | IpamError::NodeNotFound(_)
        | IpamError::BadPoolSelector { .. } => codes::INVALID_ARGUMENT,
        _ => codes::INTERNAL,
    }
}

fn remote(e: IpamError) -> RemoteError {
    RemoteError::new(error_code(&e), e.to_string())
}

#[async_trait::async_trait]
impl IpamBackend for IpamService {
    fn node_name(&self) -> &str {
        &self.node
    }

    async fn assign(&self, req: &AssignRequest) -> Result<Assigned, RemoteError> {
        let start = Instant::now();
        let args = AutoAssignArgs {
            num4: req.num4 as usize,
            num6: req.num6 as usize,
            handle_id: Some(req.handle_id.clone()),
            attrs: req.attrs.clone(),
            hostname: self.node.clone(),
            ipv4_pools: req.ipv4_pools.clone(),
            ipv6_pools: req.ipv6_pools.clone(),
            max_blocks_per_host: 0,
            host_reserved_v4: None,
            host_reserved_v6: None,
            intended_use: IntendedUse::Workload,
            namespace_labels: req.namespace_labels.clone(),
        };
        let r = self
            .allocator
            .auto_assign(&args)
            .await
            .map(|a| Assigned {
                ipv4: a.ipv4,
                ipv6: a.ipv6,
            })
            .map_err(remote);
        self.metrics.observe("assign", start, &r);
        r
    }

    async fn assign_ips(&self, req: &AssignIpsRequest) -> Result<Assigned, RemoteError> {
        let start = Instant::now();
        let r = self.assign_specific(req).await;
        self.metrics.observe("assign_ips", start, &r);
        r
    }

    async fn release_handle(&self, handle_id: &str) -> Result<usize, RemoteError> {
        let start = Instant::now();
        let r = self
            .allocator
            .release_by_handle(handle_id)
            .await
            .map(|h| h.released)
            .map_err(remote);
        self.metrics.observe("release_handle", start, &r);
        r
    }

    async fn release_ips(
        &self,
        ips: &[IpAddr],
        handle_id: Option<&str>,
    ) -> Result<Vec<IpAddr>, RemoteError> {
        let start = Instant::now();
        let opts: Vec<ReleaseOptions> = ips
            .iter()
            .map(|ip| {
                let mut o = ReleaseOptions::address(*ip);
                o.handle = handle_id.map(str::to_string);
                o
            })
            .collect();
        let r = self.allocator.release_ips(&opts).await.map_err(remote);
        self.metrics.observe("release_ips", start, &r);
        r
    }
}

/// Binds the service's socket: creates the parent directory, removes a stale socket left by
/// a previous agent (refusing when another agent still answers on it, or when the path is
/// not a socket), and makes it `0660` (the CNI plugin runs as root; the group may be granted
/// access). Must be called inside a tokio runtime.
pub fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener, ServiceError> {
    let fail = |reason: String| ServiceError::Socket {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(fail(
                    "another process (calico-node?) is serving on it; refusing to take it over"
                        .into(),
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| fail(format!("removing the stale socket: {e}")))?;
        }
        Ok(_) => {
            return Err(fail(
                "exists and is not a socket; refusing to remove it".into(),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let std_listener =
        std::os::unix::net::UnixListener::bind(path).map_err(|e| fail(format!("binding: {e}")))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| fail(format!("setting mode 0660: {e}")))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| fail(e.to_string()))?;
    tokio::net::UnixListener::from_std(std_listener).map_err(|e| fail(e.to_string()))
}

/// Serves `listener` until `shutdown`, then waits for the allocator to settle and removes the
/// socket file (only if it is still ours: same inode as when bound).
pub async fn run(
    listener: tokio::net::UnixListener,
    path: PathBuf,
    service: Arc<IpamService>,
    shutdown: CancellationToken,
) {
    let ino = std::fs::metadata(&path).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.ino()
    });
    calico_ipam_rpc::serve(listener, service.clone(), shutdown).await;
    if let Err(e) = service.allocator().settle().await {
        tracing::warn!(error = %e, "IPAM allocator did not settle cleanly");
    }
    let still_ours = std::fs::metadata(&path).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.ino()
    }) == ino;
    if still_ours
        && ino.is_some()
        && let Err(e) = std::fs::remove_file(&path)
    {
        tracing::warn!(path = %path.display(), error = %e, "removing the IPAM socket");
    }
}
