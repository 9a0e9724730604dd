//! The orchestration of the two plugins, written against small traits so every verb and
//! every failure path is tested with in-memory fakes:
//!
//! * [`Dataplane`]: the workload's veth pair (calico-netlink's `workload` module in the bin);
//! * [`IpamExec`]: running the configured IPAM plugin (delegation by exec, SPEC.md section 4);
//! * [`EndpointStore`]: WorkloadEndpoints, the network's Profile and ClusterInformation in
//!   the datastore (calico-client in the bin);
//! * [`IpamAgent`]: calico-node's IPAM service (calico-ipam-rpc in the bin);
//! * [`PoolSource`], [`AllocationSource`]: the datastore reads `calico-ipam` needs (pool
//!   names, existing allocations for CHECK and GC).
//!
//! [`dispatch`] is the `skel` part shared by both binaries: environment, VERSION, version
//! compatibility, netconf parsing and validation, then the verb, then the one JSON document
//! for stdout and the exit code.

pub mod calico;
pub mod ipam;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use calico_api::profile::Profile;
use calico_api::workloadendpoint::WorkloadEndpoint;
use ipnet::IpNet;
use serde_json::Value;

use crate::netconf::{HostPaths, NetConf};
use crate::spec::version::{self, CURRENT_VERSION};
use crate::spec::{CniEnv, CniError, CniResult, Command};

// ---- traits ------------------------------------------------------------------------------

/// What to plumb for one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlumbRequest {
    /// The container's network namespace (`CNI_NETNS`).
    pub netns: PathBuf,
    /// Host-side veth name (`caliXXXXXXXXXXX`).
    pub host_if: String,
    /// Container-side name (`CNI_IFNAME`).
    pub container_if: String,
    /// The workload's addresses as host prefixes (/32, /128).
    pub addresses: Vec<IpNet>,
    pub mtu: u32,
    /// `container_settings.allow_ip_forwarding`.
    pub allow_ip_forwarding: bool,
    /// For CHECK: the container-side MAC the previous ADD reported.
    pub expected_container_mac: Option<String>,
}

/// The interfaces made by [`Dataplane::setup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plumbed {
    /// `aa:bb:cc:dd:ee:ff`.
    pub host_mac: String,
    pub container_mac: String,
}

/// The workload's interfaces (Calico `DoNetworking` / `CleanUpNamespace`).
pub trait Dataplane {
    /// Creates the veth pair, addresses, routes and sysctls; a stale host veth of the same
    /// name is replaced (Calico deletes it first). Undoes itself on failure.
    fn setup(&self, req: &PlumbRequest) -> Result<Plumbed, CniError>;
    /// Removes the container side inside `netns` (when given and still there) and, with
    /// `host_side`, the host veth too. Nothing left is success.
    fn teardown(
        &self,
        netns: Option<&Path>,
        host_if: &str,
        container_if: &str,
        host_side: bool,
    ) -> Result<(), CniError>;
    /// Verifies everything [`Dataplane::setup`] made is still there; the error lists every
    /// mismatch.
    fn check(&self, req: &PlumbRequest) -> Result<Plumbed, CniError>;
    /// [`Dataplane::teardown`] and `meanwhile` (DEL's address release), concurrently where the
    /// dataplane can: deleting a veth waits ~10 ms in the kernel (an RCU grace period), time the
    /// release can use. The default runs them one after the other.
    fn teardown_while<T>(
        &self,
        netns: Option<&Path>,
        host_if: &str,
        container_if: &str,
        host_side: bool,
        meanwhile: impl FnOnce() -> T,
    ) -> (Result<(), CniError>, T) {
        let t = self.teardown(netns, host_if, container_if, host_side);
        (t, meanwhile())
    }
}

/// Runs the delegated IPAM plugin named `plugin` (found in `CNI_PATH`) with `command`, the
/// caller's environment and `stdin`, and returns its stdout. A plugin failure comes back as
/// the plugin's own CNI error.
pub trait IpamExec {
    fn exec(
        &self,
        plugin: &str,
        command: Command,
        env: &CniEnv,
        stdin: &[u8],
    ) -> Result<Vec<u8>, CniError>;
}

/// Why a datastore write did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The object changed since it was read (resourceVersion compare failed).
    #[error("update conflict: {0}")]
    Conflict(String),
    /// Anything else (unreachable datastore, validation, ...).
    #[error("{0}")]
    Other(String),
}

/// The datastore side of the `calico` plugin.
pub trait EndpointStore {
    /// `ClusterInformation default .spec.datastoreReady` (absent object or flag = not ready).
    fn datastore_ready(&self) -> Result<bool, StoreError>;
    /// WorkloadEndpoints whose name starts with `prefix`, in `namespace` (every namespace
    /// when `None`).
    fn list_endpoints(
        &self,
        namespace: Option<&str>,
        prefix: &str,
    ) -> Result<Vec<WorkloadEndpoint>, StoreError>;
    fn get_endpoint(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<WorkloadEndpoint>, StoreError>;
    /// Creates (empty resourceVersion) or updates (CAS on resourceVersion) the endpoint.
    fn write_endpoint(&self, wep: &WorkloadEndpoint) -> Result<WorkloadEndpoint, StoreError>;
    /// Deletes the endpoint if it is still at `resource_version`; `Ok(false)` when it was gone.
    fn delete_endpoint(
        &self,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<bool, StoreError>;
    /// Creates the profile unless one of that name exists (the plugin never updates it).
    fn ensure_profile(&self, profile: &Profile) -> Result<(), StoreError>;
}

/// calico-node's IPAM service, as `calico-ipam` uses it (Contract 2).
pub trait IpamAgent {
    /// The node the agent serves. Unreachable agent: [`AgentError::Unreachable`].
    fn ping(&self) -> Result<String, AgentError>;
    fn assign(&self, req: &AssignRequest) -> Result<Assigned, AgentError>;
    /// Assigns exactly `req.ips` (Calico's AssignIP, for `IP=` in `CNI_ARGS`), all or nothing;
    /// the answer lists them as host prefixes (/32, /128). An address already held is refused
    /// with code `address_in_use`.
    fn assign_ips(&self, req: &AssignIpsRequest) -> Result<Assigned, AgentError>;
    /// Releases everything `handle_id` holds; 0 when it held nothing.
    fn release_handle(&self, node: &str, handle_id: &str) -> Result<usize, AgentError>;
    /// Releases `ips` (only if held by `handle_id` when given); returns those not allocated.
    fn release_ips(
        &self,
        node: &str,
        ips: &[IpAddr],
        handle_id: Option<&str>,
    ) -> Result<Vec<IpAddr>, AgentError>;
}

/// An assignment request (the fields of calico-ipam-rpc's `AssignRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignRequest {
    pub node: String,
    pub handle_id: String,
    pub num4: u32,
    pub num6: u32,
    pub ipv4_pools: Vec<IpNet>,
    pub ipv6_pools: Vec<IpNet>,
    pub attrs: BTreeMap<String, String>,
}

/// A request for specific addresses (the fields of calico-ipam-rpc's `AssignIpsRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignIpsRequest {
    pub node: String,
    pub handle_id: String,
    pub ips: Vec<IpAddr>,
    pub attrs: BTreeMap<String, String>,
}

/// What the agent assigned: addresses with their block's prefix (`10.244.220.81/26`), or as
/// host prefixes for [`IpamAgent::assign_ips`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assigned {
    pub ipv4: Vec<IpNet>,
    pub ipv6: Vec<IpNet>,
}

/// A failed agent call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// No agent listening (or it did not answer in time).
    #[error("{0}")]
    Unreachable(String),
    /// The agent answered with an error (`code` as in calico-ipam-rpc's `codes`).
    #[error("calico-node refused the IPAM request: {message} ({code})")]
    Remote { code: String, message: String },
    /// Anything else (protocol breakage).
    #[error("{0}")]
    Other(String),
}

/// IP pools by name, for `ipv4_pools` / `ipv6_pools` entries that are not CIDRs.
pub trait PoolSource {
    fn pool_cidr(&self, name: &str) -> Result<Option<IpNet>, CniError>;
}

impl<T: PoolSource + ?Sized> PoolSource for std::rc::Rc<T> {
    fn pool_cidr(&self, name: &str) -> Result<Option<IpNet>, CniError> {
        (**self).pool_cidr(name)
    }
}

/// One allocated address as IPAM blocks record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub ip: IpAddr,
    pub handle_id: Option<String>,
    pub attrs: BTreeMap<String, String>,
}

/// Every allocated address (read from the IPAM blocks).
pub trait AllocationSource {
    fn allocations(&self) -> Result<Vec<Allocation>, CniError>;
}

impl<T: AllocationSource + ?Sized> AllocationSource for std::rc::Rc<T> {
    fn allocations(&self) -> Result<Vec<Allocation>, CniError> {
        (**self).allocations()
    }
}

// ---- host settings -----------------------------------------------------------------------

/// A source of the OS host name.
pub type HostnameFn = Box<dyn Fn() -> std::io::Result<String>>;
/// A clock.
pub type ClockFn = Box<dyn Fn() -> chrono::DateTime<chrono::Utc>>;

/// Things the plugins read from the host, replaceable in tests.
pub struct HostEnv {
    pub paths: HostPaths,
    /// Felix's interface prefix for host veths (`cali`).
    pub interface_prefix: String,
    /// The OS host name.
    pub hostname: HostnameFn,
    /// The clock for IPAM attributes.
    pub now: ClockFn,
}

impl HostEnv {
    /// The real host.
    pub fn system() -> HostEnv {
        HostEnv {
            paths: HostPaths::default(),
            interface_prefix: crate::args::interface_prefix(
                std::env::var("FELIX_INTERFACEPREFIX").ok().as_deref(),
            ),
            hostname: Box::new(read_hostname),
            now: Box::new(chrono::Utc::now),
        }
    }
}

/// The kernel's host name (what Go's `os.Hostname` reads).
pub fn read_hostname() -> std::io::Result<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string())
}

// ---- dispatch ----------------------------------------------------------------------------

/// One invocation as a verb sees it.
pub struct Request<'a> {
    pub env: &'a CniEnv,
    pub conf: &'a NetConf,
    /// Stdin exactly as received (delegated plugins get it unchanged).
    pub stdin: &'a [u8],
}

/// A plugin's verbs.
pub trait Verbs {
    fn add(&self, req: &Request<'_>) -> Result<CniResult, CniError>;
    fn del(&self, req: &Request<'_>) -> Result<(), CniError>;
    fn check(&self, req: &Request<'_>) -> Result<(), CniError>;
    fn status(&self, req: &Request<'_>) -> Result<(), CniError>;
    fn gc(&self, req: &Request<'_>) -> Result<(), CniError>;
}

/// What to print and how to exit.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The JSON document for stdout (nothing for a successful DEL/CHECK/STATUS/GC).
    pub stdout: Option<Value>,
    /// 0 on success, 1 on error (SPEC.md section 2 "Errors").
    pub exit_code: i32,
    /// The error, for the log.
    pub error: Option<CniError>,
}

impl Response {
    fn ok(stdout: Option<Value>) -> Response {
        Response {
            stdout,
            exit_code: 0,
            error: None,
        }
    }
    fn err(e: CniError, version: &str) -> Response {
        Response {
            stdout: Some(e.to_json(version)),
            exit_code: 1,
            error: Some(e),
        }
    }
}

/// libcni `skel.PluginMain` for our plugins.
pub fn dispatch(verbs: &impl Verbs, env: Result<CniEnv, CniError>, stdin: &[u8]) -> Response {
    // The version errors are reported in: the request's when it can be read.
    let request_version = version::config_version(stdin)
        .ok()
        .filter(|v| version::SUPPORTED_VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| CURRENT_VERSION.to_string());
    let env = match env {
        Ok(e) => e,
        Err(e) => return Response::err(e, &request_version),
    };
    if env.command == Command::Version {
        return Response::ok(Some(version::version_response(stdin)));
    }
    match run_verb(verbs, &env, stdin) {
        Ok(out) => Response::ok(out),
        Err(e) => Response::err(e, &request_version),
    }
}

fn run_verb(verbs: &impl Verbs, env: &CniEnv, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    let ver = version::config_version(stdin)?;
    version::check_compatible(env.command, &ver)?;
    let conf = NetConf::parse(stdin)?;
    conf.validate()?;
    let req = Request {
        env,
        conf: &conf,
        stdin,
    };
    match env.command {
        Command::Add => {
            let result = verbs.add(&req)?;
            Ok(Some(result.to_json(conf.result_version())?))
        }
        Command::Del => verbs.del(&req).map(|_| None),
        Command::Check => verbs.check(&req).map(|_| None),
        Command::Status => verbs.status(&req).map(|_| None),
        Command::Gc => verbs.gc(&req).map(|_| None),
        Command::Version => Ok(Some(version::version_response(stdin))),
    }
}

/// Narrows an address to its host prefix (/32, /128), as Calico does with what IPAM returns
/// (`PopulateEndpointNets`, `DoWorkloadNetnsSetUp`).
pub fn host_prefix(net: &IpNet) -> IpNet {
    IpNet::from(net.addr())
}

/// A container ID from a `<network>.<containerID>` handle of network `network`.
pub fn container_of_handle<'h>(handle: &'h str, network: &str) -> Option<&'h str> {
    handle
        .strip_prefix(network)
        .and_then(|rest| rest.strip_prefix('.'))
        .filter(|c| !c.is_empty())
}
