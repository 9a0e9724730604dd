//! Node start-up as Calico's (`node/pkg/lifecycle/startup/startup.go` `Run`):
//!
//! 1. read this node's `Node` (or start a new one);
//! 2. set its BGP addresses from `IP`/`IP6` (autodetected, given, or kept), and its interface
//!    list; refuse an address another node already uses (Calico's `checkConflictingNodes`);
//! 3. set `spec.bgp.asNumber` from `AS` and the orchestrator reference;
//! 4. create or update the Node;
//! 5. create the default IPv4/IPv6 pools when no pool of that family exists (unless
//!    `NO_DEFAULT_POOLS`);
//! 6. `EnsureInitialized` (ClusterInformation `default` with clusterGUID, calicoVersion,
//!    datastoreReady; the built-in tiers), the global and per-node FelixConfiguration defaults
//!    and the default BGPConfiguration and IPAMConfiguration;
//! 7. write the node-name file.
//!
//! Everything that can be refused for bad configuration is checked before the first write
//! ([`crate::config`] validates the variables; addresses are detected and pools chosen here
//! before anything is stored). A lost update race re-runs the whole sequence.

use std::net::IpAddr;
use std::path::Path;

use calico_api::Resource;
use calico_api::bgpconfig::BGPConfiguration;
use calico_api::felixconfig::FelixConfiguration;
use calico_api::ipamconfig::IPAMConfiguration;
use calico_api::ippool::IPPool;
use calico_api::node::{Node, NodeBGPSpec, NodeInterface, OrchRef};
use calico_client::{Client, ClientError, into_kind};
use ipnet::IpNet;

use crate::autodetect::{
    self, AutodetectError, DEFAULT_INTERFACES_TO_EXCLUDE, HostNetwork, default_ipv4_pool,
};
use crate::config::pools::{
    DEFAULT_IPV4_POOL_CIDR, DEFAULT_IPV4_POOL_NAME, DEFAULT_IPV6_POOL_NAME,
};
use crate::config::{IpSetting, NetworkingBackend, NodeConfig};

/// The version written to ClusterInformation (`calicoVersion`).
pub const CALICO_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// Why start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{what}: {source}")]
    Datastore {
        what: String,
        #[source]
        source: ClientError,
    },
    #[error(
        "failed to autodetect an IPv{version} address: {source}. If auto-detecting, choose a \
         different autodetection method (IP{}_AUTODETECTION_METHOD). Otherwise provide an \
         explicit address (IP{}).",
        if *version == 6 { "6" } else { "" },
        if *version == 6 { "6" } else { "" }
    )]
    Autodetect {
        version: u8,
        #[source]
        source: AutodetectError,
    },
    #[error("querying host interfaces: {0}")]
    Interfaces(#[source] AutodetectError),
    #[error("no IPv4 or IPv6 addresses configured or detected, required for Calico networking")]
    NoAddress,
    #[error(
        "conflicting node detected: Calico node '{other}' is already using the IPv{version} address {ip}"
    )]
    AddressConflict {
        version: u8,
        other: String,
        ip: IpAddr,
    },
    #[error("writing the node name to {path}: {source}")]
    NodenameFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn ds(what: impl Into<String>) -> impl FnOnce(ClientError) -> StartupError {
    let what = what.into();
    move |source| StartupError::Datastore { what, source }
}

/// What the host offers start-up beyond interfaces.
#[derive(Debug, Clone, Copy)]
pub struct HostFacts {
    /// `/proc/sys/net/ipv6` exists (Calico's `ipv6Supported`, together with
    /// `FELIX_IPV6SUPPORT`).
    pub ipv6_supported: bool,
}

impl HostFacts {
    /// The facts of the calling process's network namespace.
    pub fn detect() -> HostFacts {
        HostFacts {
            ipv6_supported: Path::new("/proc/sys/net/ipv6").exists(),
        }
    }
}

/// What start-up did.
#[derive(Debug, Clone)]
pub struct StartupReport {
    /// The Node as stored.
    pub node: Node,
    /// Whether the Node was created or updated.
    pub node_written: bool,
    /// Names of the pools created.
    pub pools_created: Vec<String>,
    /// The cluster's GUID.
    pub cluster_guid: String,
    /// Things Calico would warn about (address not on this host, address changed, ...).
    pub warnings: Vec<String>,
}

/// Runs start-up (see the module docs). Retries the whole sequence a few times when another
/// writer changed the Node in between (Calico exits and is restarted instead).
pub async fn run(
    cfg: &NodeConfig,
    client: &Client,
    host: &dyn HostNetwork,
    facts: HostFacts,
) -> Result<StartupReport, StartupError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match run_once(cfg, client, host, facts).await {
            Err(StartupError::Datastore { source, .. })
                if attempt < 5 && (source.is_conflict() || source.is_already_exists()) =>
            {
                tracing::info!(error = %source, "node changed under us during start-up; retrying");
            }
            other => return other,
        }
    }
}

async fn run_once(
    cfg: &NodeConfig,
    client: &Client,
    host: &dyn HostNetwork,
    facts: HostFacts,
) -> Result<StartupReport, StartupError> {
    let mut warnings = Vec::new();

    // 1. The Node, or a new one.
    let (mut node, existed) = match client.get_as::<Node>("", &cfg.node_name).await {
        Ok(n) => (n, true),
        Err(e) if e.is_does_not_exist() => {
            let mut n = Node::default();
            n.metadata.name = cfg.node_name.clone();
            (n, false)
        }
        Err(e) => return Err(ds(format!("reading Node {}", cfg.node_name))(e)),
    };

    // 2-3. Addresses, AS, orchestrator reference; decide everything before writing.
    let mut needs_update =
        configure_addresses(cfg, client, host, &mut node, existed, &mut warnings).await?;
    needs_update |= configure_as_number(cfg, &mut node);
    if let Some(r) = &cfg.k8s_node_ref {
        node.spec.orch_refs = vec![OrchRef {
            node_name: r.clone(),
            orchestrator: "k8s".into(),
        }];
        needs_update = true;
    }
    let pools = plan_pools(cfg, client, host, facts).await?;

    // 4. Create or update the Node.
    let node_written = needs_update || !existed;
    if node_written {
        node = create_or_update(client, node, existed).await?;
    }

    // 5. Default pools.
    let mut pools_created = Vec::new();
    for pool in pools {
        let name = pool.metadata.name.clone();
        match client.create(Resource::IPPool(pool)).await {
            Ok(_) => pools_created.push(name),
            // Another node got there first: fine, as in Calico's createIPPool.
            Err(e) if e.is_already_exists() => {}
            Err(e) => return Err(ds(format!("creating default IP pool {name}"))(e)),
        }
    }

    // 6. Cluster-wide defaults.
    client
        .ensure_initialized(CALICO_VERSION, &cfg.cluster_type)
        .await
        .map_err(ds("initialising ClusterInformation and tiers"))?;
    ensure_felix_defaults(client, &cfg.node_name).await?;
    ensure_bgp_default(client).await?;
    ensure_ipam_default(client).await?;
    let ci = client
        .get("ClusterInformation", "", "default")
        .await
        .map_err(ds("reading ClusterInformation default"))?;
    let cluster_guid = ci.to_json_value()["spec"]["clusterGUID"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // 7. The node-name file (utils.WriteNodeConfig).
    write_nodename_file(&cfg.nodename_file, &cfg.node_name)?;

    Ok(StartupReport {
        node,
        node_written,
        pools_created,
        cluster_guid,
        warnings,
    })
}

/// One pass of Calico's address monitor (`MonitorIPAddressSubnetsWithContext`): re-detects
/// the node's addresses and updates the Node when they changed (three attempts on a lost
/// update race). Returns whether the Node was written.
pub async fn recheck_addresses(
    cfg: &NodeConfig,
    client: &Client,
    host: &dyn HostNetwork,
) -> Result<bool, StartupError> {
    let mut last = None;
    for _ in 0..3 {
        let mut node = client
            .get_as::<Node>("", &cfg.node_name)
            .await
            .map_err(ds(format!("reading Node {}", cfg.node_name)))?;
        let mut warnings = Vec::new();
        let changed =
            configure_addresses(cfg, client, host, &mut node, true, &mut warnings).await?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        if !changed {
            return Ok(false);
        }
        match create_or_update(client, node, true).await {
            Ok(n) => {
                tracing::info!(
                    ipv4 = %n.spec.bgp.as_ref().map(|b| b.ipv4_address.as_str()).unwrap_or(""),
                    ipv6 = %n.spec.bgp.as_ref().map(|b| b.ipv6_address.as_str()).unwrap_or(""),
                    "updated node IP addresses"
                );
                return Ok(true);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(StartupError::NoAddress))
}

/// Runs [`recheck_addresses`] every `cfg.autodetect_poll_interval` until `shutdown`, when
/// `IP` or `IP6` is `autodetect` (as calico-node starts its address monitor only then).
/// Failures are logged and retried at the next tick: the agent keeps serving its pods.
pub async fn monitor_addresses(
    cfg: &NodeConfig,
    client: &Client,
    host: &dyn HostNetwork,
    shutdown: tokio_util::sync::CancellationToken,
) {
    if cfg.ipv4 != IpSetting::Autodetect && cfg.ipv6 != IpSetting::Autodetect {
        return;
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(cfg.autodetect_poll_interval) => {}
        }
        if let Err(e) = recheck_addresses(cfg, client, host).await {
            tracing::error!(error = %e, "address monitor: failed to configure IP addresses");
        }
    }
}

async fn create_or_update(
    client: &Client,
    node: Node,
    existed: bool,
) -> Result<Node, StartupError> {
    let name = node.metadata.name.clone();
    let stored = if existed {
        client
            .update(Resource::Node(node))
            .await
            .map_err(ds(format!("updating Node {name}")))?
    } else {
        client
            .create(Resource::Node(node))
            .await
            .map_err(ds(format!("creating Node {name}")))?
    };
    into_kind::<Node>(stored).map_err(ds(format!("decoding Node {name}")))
}

/// `configureAndCheckIPAddressSubnetsErr`: returns whether the Node needs writing.
async fn configure_addresses(
    cfg: &NodeConfig,
    client: &Client,
    host: &dyn HostNetwork,
    node: &mut Node,
    existed: bool,
    warnings: &mut Vec<String>,
) -> Result<bool, StartupError> {
    // Policy-only mode writes no BGP details.
    if cfg.networking_backend == NetworkingBackend::None {
        return Ok(false);
    }
    let changed = match configure_ips(cfg, host, node, warnings) {
        Ok(c) => c,
        Err(e) => {
            // An existing node whose autodetection now fails loses its stale addresses.
            if existed {
                clear_node_ips(
                    client,
                    node,
                    cfg.ipv4 == IpSetting::Autodetect,
                    cfg.ipv6 == IpSetting::Autodetect,
                )
                .await;
            }
            return Err(e);
        }
    };
    let bgp_empty = node
        .spec
        .bgp
        .as_ref()
        .is_none_or(|b| b.ipv4_address.is_empty() && b.ipv6_address.is_empty());
    if bgp_empty {
        return Err(StartupError::NoAddress);
    }
    if changed && !cfg.disable_node_ip_check {
        let (list, _) = client
            .list_as::<Node>(None)
            .await
            .map_err(ds("listing Nodes to check for address conflicts"))?;
        if let Err((v4c, v6c, err)) = check_conflicts(node, &list, warnings) {
            if existed {
                clear_node_ips(
                    client,
                    node,
                    cfg.ipv4 == IpSetting::Autodetect && v4c,
                    cfg.ipv6 == IpSetting::Autodetect && v6c,
                )
                .await;
            }
            return Err(err);
        }
    }
    Ok(changed)
}

/// `clearNodeIPs`: best effort, as in Calico (a failure is only logged).
async fn clear_node_ips(client: &Client, node: &Node, v4: bool, v6: bool) {
    if !v4 && !v6 {
        return;
    }
    let mut n = node.clone();
    if let Some(b) = n.spec.bgp.as_mut() {
        if v4 {
            tracing::info!(ip = %b.ipv4_address, "clearing out-of-date IPv4 address from this node");
            b.ipv4_address.clear();
        }
        if v6 {
            tracing::info!(ip = %b.ipv6_address, "clearing out-of-date IPv6 address from this node");
            b.ipv6_address.clear();
        }
        if *b == NodeBGPSpec::default() {
            n.spec.bgp = None;
        }
    }
    if let Err(e) = client.update(Resource::Node(n)).await {
        tracing::warn!(error = %e, "failed to clear node addresses");
    }
}

/// The address part of a Node's `ipv4Address`/`ipv6Address` (`cnet.ParseCIDROrIP`).
fn address_of(s: &str) -> Option<IpAddr> {
    if s.is_empty() {
        return None;
    }
    let a = s.split('/').next().unwrap_or(s);
    a.parse().ok()
}

/// `checkConflictingNodes`: another node with one of our addresses is an error; our own
/// stored Node with other addresses is only a warning (the address may really have changed).
fn check_conflicts(
    node: &Node,
    all: &[Node],
    warnings: &mut Vec<String>,
) -> Result<(), (bool, bool, StartupError)> {
    let ours = node.spec.bgp.clone().unwrap_or_default();
    let our4 = address_of(&ours.ipv4_address);
    let our6 = address_of(&ours.ipv6_address);
    let mut first: Option<StartupError> = None;
    let (mut v4c, mut v6c) = (false, false);
    for other in all {
        let Some(theirs) = &other.spec.bgp else {
            continue;
        };
        let their4 = address_of(&theirs.ipv4_address);
        let their6 = address_of(&theirs.ipv6_address);
        if other.metadata.name == node.metadata.name {
            for (v, t, o) in [(4, their4, our4), (6, their6, our6)] {
                if let (Some(t), Some(o)) = (t, o)
                    && t != o
                {
                    warnings.push(format!(
                        "IPv{v} address has changed from {t} to {o}. This could happen if there \
                         are multiple nodes with the same name."
                    ));
                }
            }
            continue;
        }
        if let (Some(t), Some(o)) = (their4, our4)
            && t == o
        {
            v4c = true;
            first.get_or_insert(StartupError::AddressConflict {
                version: 4,
                other: other.metadata.name.clone(),
                ip: o,
            });
        }
        if let (Some(t), Some(o)) = (their6, our6)
            && t == o
        {
            v6c = true;
            first.get_or_insert(StartupError::AddressConflict {
                version: 6,
                other: other.metadata.name.clone(),
                ip: o,
            });
        }
    }
    match first {
        Some(e) => Err((v4c, v6c, e)),
        None => Ok(()),
    }
}

/// `configureIPsAndSubnets`: sets the BGP addresses and the interface list; returns whether
/// an address or the interface list changed.
fn configure_ips(
    cfg: &NodeConfig,
    host: &dyn HostNetwork,
    node: &mut Node,
    warnings: &mut Vec<String>,
) -> Result<bool, StartupError> {
    let bgp = node.spec.bgp.get_or_insert_with(NodeBGPSpec::default);
    let old4 = bgp.ipv4_address.clone();
    let old6 = bgp.ipv6_address.clone();
    let old_ifaces = node.spec.interfaces.clone();

    for version in [4u8, 6] {
        let (setting, method) = if version == 4 {
            (&cfg.ipv4, &cfg.ipv4_autodetection)
        } else {
            (&cfg.ipv6, &cfg.ipv6_autodetection)
        };
        let bgp = node.spec.bgp.get_or_insert_with(NodeBGPSpec::default);
        let current = if version == 4 {
            &mut bgp.ipv4_address
        } else {
            &mut bgp.ipv6_address
        };
        // IPv4 is autodetected when unset and the node has none; IPv6 only on request.
        let detect = *setting == IpSetting::Autodetect
            || (version == 4 && *setting == IpSetting::Unset && current.is_empty());
        if detect {
            match autodetect::autodetect(host, method, version) {
                Ok(d) => {
                    tracing::info!(interface = %d.interface, address = %d.cidr, "using autodetected IPv{version} address");
                    *current = d.cidr.to_string();
                }
                Err(source) if current.is_empty() => {
                    return Err(StartupError::Autodetect { version, source });
                }
                Err(e) => {
                    warnings.push(format!(
                        "Autodetection of IPv{version} address failed ({e}), keeping existing value: {current}"
                    ));
                    validate_ip(host, current, warnings);
                }
            }
        } else if let IpSetting::Address { ip, prefix } = setting {
            let cidr = match prefix {
                Some(p) => IpNet::new(*ip, *p).unwrap_or_else(|_| IpNet::from(*ip)),
                // Calico looks up the interface's prefix for IP only; IP6 without a prefix
                // is taken as a host address.
                None if version == 4 => {
                    autodetect::local_cidr(host, *ip).map_err(StartupError::Interfaces)?
                }
                None => IpNet::from(*ip),
            };
            *current = cidr.to_string();
            validate_ip(host, current, warnings);
        } else {
            // `none` or unset with an existing value: keep it, checking it is local.
            validate_ip(host, current, warnings);
        }
    }

    // The interface list, for the families given explicitly (IP/IP6 not none/unset).
    let explicit = |s: &IpSetting| !matches!(s, IpSetting::None | IpSetting::Unset);
    let versions: Vec<u8> = match (explicit(&cfg.ipv4), explicit(&cfg.ipv6)) {
        (true, false) => vec![4],
        (false, true) => vec![6],
        (true, true) => vec![4, 6],
        (false, false) => vec![],
    };
    let mut interfaces = Vec::new();
    if !versions.is_empty() {
        let excl: Vec<String> = DEFAULT_INTERFACES_TO_EXCLUDE
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut list = autodetect::get_interfaces(host, &[], &excl, &versions)
            .map_err(StartupError::Interfaces)?;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        interfaces = list
            .into_iter()
            .map(|i| NodeInterface {
                name: i.name,
                addresses: i.cidrs.iter().map(|c| c.addr().to_string()).collect(),
            })
            .collect();
    }
    node.spec.interfaces = interfaces;

    let bgp = node.spec.bgp.get_or_insert_with(NodeBGPSpec::default);
    Ok(bgp.ipv4_address != old4 || bgp.ipv6_address != old6 || node.spec.interfaces != old_ifaces)
}

/// `validateIP`: warns when the address is not on one of the host's interfaces.
fn validate_ip(host: &dyn HostNetwork, addr: &str, warnings: &mut Vec<String>) {
    let Some(ip) = address_of(addr) else {
        return;
    };
    match autodetect::is_local_address(host, ip) {
        Ok(true) => {}
        Ok(false) => warnings.push(format!(
            "Unable to confirm IPv{} address {ip} is assigned to this host",
            if ip.is_ipv4() { 4 } else { 6 }
        )),
        Err(e) => warnings.push(format!("Unable to query host interfaces: {e}")),
    }
}

/// `configureASNumber`.
fn configure_as_number(cfg: &NodeConfig, node: &mut Node) -> bool {
    if cfg.networking_backend == NetworkingBackend::None {
        return false;
    }
    match cfg.as_number {
        Some(asn) => {
            node.spec
                .bgp
                .get_or_insert_with(NodeBGPSpec::default)
                .as_number = Some(asn);
            true
        }
        None => false,
    }
}

/// A random ULA /48 (RFC 4193: `fd` + 40 random bits), as `GenerateIPv6ULAPrefix`.
pub fn random_ula_prefix() -> IpNet {
    let r = uuid::Uuid::new_v4().into_bytes();
    let mut b = [0u8; 16];
    b[0] = 0xfd;
    b[1..6].copy_from_slice(&r[..5]);
    IpNet::new(IpAddr::from(b), 48).unwrap_or_else(|_| IpNet::from(IpAddr::from(b)))
}

/// `configureIPPools` up to the writes: the pools to create.
async fn plan_pools(
    cfg: &NodeConfig,
    client: &Client,
    host: &dyn HostNetwork,
    facts: HostFacts,
) -> Result<Vec<IPPool>, StartupError> {
    let p = &cfg.pools;
    if p.disabled || (p.ipv4.is_none() && p.ipv6.is_none()) {
        return Ok(Vec::new());
    }
    let (existing, _) = client
        .list_as::<IPPool>(None)
        .await
        .map_err(ds("listing IP pools"))?;
    let mut have4 = false;
    let mut have6 = false;
    for pool in &existing {
        match pool.spec.cidr.parse::<IpNet>() {
            Ok(IpNet::V4(_)) => have4 = true,
            Ok(IpNet::V6(_)) => have6 = true,
            Err(_) => {
                tracing::warn!(cidr = %pool.spec.cidr, "skipping IP pool with an unparsable CIDR")
            }
        }
    }
    let mut out = Vec::new();
    if let Some(s) = &p.ipv4
        && !have4
    {
        let cidr = match s.cidr {
            Some(c) => c,
            None => {
                let preferred: IpNet = DEFAULT_IPV4_POOL_CIDR
                    .parse()
                    .unwrap_or(IpNet::V4(Default::default()));
                let addrs: Vec<IpNet> = autodetect::get_interfaces(host, &[], &[], &[4])
                    .map_err(StartupError::Interfaces)?
                    .into_iter()
                    .flat_map(|i| i.cidrs)
                    .collect();
                default_ipv4_pool(&addrs, preferred)
            }
        };
        out.push(s.to_ippool(DEFAULT_IPV4_POOL_NAME, cidr));
    }
    if let Some(s) = &p.ipv6
        && !have6
        && cfg.felix.ipv6_support
        && facts.ipv6_supported
    {
        let cidr = s.cidr.unwrap_or_else(random_ula_prefix);
        out.push(s.to_ippool(DEFAULT_IPV6_POOL_NAME, cidr));
    }
    Ok(out)
}

/// `ensureDefaultConfig`'s FelixConfiguration part: the global object gets
/// `reportingInterval: 0s` (calico-node's default differs from Felix's) and
/// `logSeverityScreen: Info` when unset; `node.<name>` gets `defaultEndpointToHostAction:
/// Return` so workloads can reach their host.
async fn ensure_felix_defaults(client: &Client, node_name: &str) -> Result<(), StartupError> {
    match client.get_as::<FelixConfiguration>("", "default").await {
        Ok(mut fc) => {
            let mut update = false;
            if fc.spec.reporting_interval.is_none() {
                fc.spec.reporting_interval = Some(calico_api::duration::Duration::from_secs(0));
                update = true;
            }
            if fc.spec.log_severity_screen.is_empty() {
                fc.spec.log_severity_screen = "Info".into();
                update = true;
            }
            if update {
                match client.update(Resource::FelixConfiguration(fc)).await {
                    Ok(_) => {}
                    Err(e) if e.is_conflict() => {}
                    Err(e) => return Err(ds("updating FelixConfiguration default")(e)),
                }
            }
        }
        Err(e) if e.is_does_not_exist() => {
            let mut fc = FelixConfiguration::default();
            fc.metadata.name = "default".into();
            fc.spec.reporting_interval = Some(calico_api::duration::Duration::from_secs(0));
            fc.spec.log_severity_screen = "Info".into();
            match client.create(Resource::FelixConfiguration(fc)).await {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => {}
                Err(e) => return Err(ds("creating FelixConfiguration default")(e)),
            }
        }
        Err(e) => return Err(ds("reading FelixConfiguration default")(e)),
    }
    let name = format!("node.{node_name}");
    match client.get_as::<FelixConfiguration>("", &name).await {
        Ok(mut fc) => {
            if fc.spec.default_endpoint_to_host_action.is_empty() {
                fc.spec.default_endpoint_to_host_action = "Return".into();
                match client.update(Resource::FelixConfiguration(fc)).await {
                    Ok(_) => {}
                    Err(e) if e.is_conflict() => {}
                    Err(e) => return Err(ds(format!("updating FelixConfiguration {name}"))(e)),
                }
            }
        }
        Err(e) if e.is_does_not_exist() => {
            let mut fc = FelixConfiguration::default();
            fc.metadata.name = name.clone();
            fc.spec.default_endpoint_to_host_action = "Return".into();
            match client.create(Resource::FelixConfiguration(fc)).await {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => {}
                Err(e) => return Err(ds(format!("creating FelixConfiguration {name}"))(e)),
            }
        }
        Err(e) => return Err(ds(format!("reading FelixConfiguration {name}"))(e)),
    }
    Ok(())
}

/// `ensureDefaultBGPConfigExists`.
async fn ensure_bgp_default(client: &Client) -> Result<(), StartupError> {
    match client.get("BGPConfiguration", "", "default").await {
        Ok(_) => Ok(()),
        Err(e) if e.is_does_not_exist() => {
            let mut bc = BGPConfiguration::default();
            bc.metadata.name = "default".into();
            match client.create(Resource::BGPConfiguration(bc)).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_already_exists() => Ok(()),
                Err(e) => Err(ds("creating BGPConfiguration default")(e)),
            }
        }
        Err(e) => Err(ds("reading BGPConfiguration default")(e)),
    }
}

/// `ensureDefaultIPAMConfigExists`: the v3 `IPAMConfiguration` `default` with the meaningful
/// defaults set explicitly (auto-allocate blocks, no strict affinity, no block limit, KubeVirt
/// address persistence enabled). In etcd mode this is the v3 resource only; the allocator's
/// own settings stay at `/calico/ipam/v2/config`, as in Calico.
async fn ensure_ipam_default(client: &Client) -> Result<(), StartupError> {
    match client.get("IPAMConfiguration", "", "default").await {
        Ok(_) => Ok(()),
        Err(e) if e.is_does_not_exist() => {
            let mut ic = IPAMConfiguration::default();
            ic.metadata.name = "default".into();
            ic.spec.auto_allocate_blocks = true;
            ic.spec.strict_affinity = false;
            ic.spec.max_blocks_per_host = 0;
            ic.spec.kubevirt_vm_address_persistence = Some("Enabled".into());
            match client.create(Resource::IPAMConfiguration(ic)).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_already_exists() => Ok(()),
                Err(e) => Err(ds("creating IPAMConfiguration default")(e)),
            }
        }
        Err(e) => Err(ds("reading IPAMConfiguration default")(e)),
    }
}

/// `utils.WriteNodeConfig`: the node name, for a restart without `NODENAME`.
fn write_nodename_file(path: &Path, name: &str) -> Result<(), StartupError> {
    let err = |source| StartupError::NodenameFile {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // Written to a temporary file and renamed, so a reader never sees half a name.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, name).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
