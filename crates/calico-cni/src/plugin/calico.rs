//! The `calico` plugin's verbs (`cni-plugin/pkg/plugin/plugin.go`, `pkg/k8s/k8s.go`).
//!
//! **ADD**: node-name file, MTU, node name, workload identity; the datastore must be ready;
//! the network's Profile exists (policy type unset, as Calico creates it); an existing
//! WorkloadEndpoint of this workload is looked up by name prefix. A `cni` workload that
//! already has one gets it back as the result with the profile appended (Calico's "existing
//! container added to a new network" path); otherwise the IPAM plugin is run, the veth pair
//! plumbed and the WorkloadEndpoint created or updated. Any failure after IPAM releases the
//! addresses (IPAM DEL with the same stdin) and removes the interfaces: nothing stays half
//! applied. (Calico itself leaves the veth in place when the endpoint write fails; we remove
//! it too.) A failed IPAM ADD is followed by an IPAM DEL, as SPEC.md section 4 asks. A `cni`
//! workload whose host veth name (from the first 11 characters of its container ID) is taken
//! by another container's endpoint is refused rather than stealing that veth.
//!
//! **DEL** is idempotent: it succeeds without a netns, without a prevResult, repeated, and
//! after a failed ADD. The endpoint is deleted only when its `containerID` is empty or ours
//! (compare-and-delete on its resourceVersion, retried on conflict, k8s.go `CmdDelK8s`); an
//! endpoint owned by another container (a newer sandbox of the same pod) is left alone, as is
//! its host veth. The IPAM plugin's DEL always runs (addresses are keyed by container ID).
//! A datastore that cannot be read fails the DEL before anything is removed, so an endpoint
//! is never cleaned up on a guess.
//!
//! **CHECK** really verifies, where Calico's `cmdDummyCheck` prints "OK": the prevResult names
//! our interfaces, the WorkloadEndpoint exists, belongs to this container and matches the
//! prevResult (interface, addresses, MAC), the dataplane still has the veth pair, addresses,
//! routes and sysctls, and the IPAM plugin's CHECK passes.
//!
//! **STATUS** (spec 1.1): calico-node must have started (node-name file), the datastore must
//! answer and be ready, and the IPAM plugin's STATUS must pass; otherwise code 50. **GC** (spec 1.1): endpoints of this network on this node whose
//! container is not in `cni.dev/valid-attachments` are deleted, then GC is forwarded to the
//! IPAM plugin; errors are collected and reported together after doing as much as possible.

use std::collections::BTreeSet;

use calico_api::meta::ObjectMeta;
use calico_api::profile::{Profile, ProfileSpec};
use calico_api::rule::{Action, EntityRule, Rule};
use calico_api::workloadendpoint::WorkloadEndpoint;

use super::{
    Dataplane, EndpointStore, HostEnv, IpamExec, PlumbRequest, Request, StoreError, Verbs,
    host_prefix,
};
use crate::args::{CniArgs, Orchestrator, Workload};
use crate::spec::{CniError, CniResult, Command, ErrorCode, Interface};

/// How often a conflicting endpoint delete is retried (k8s.go: 5 retries after the first try).
const DELETE_ATTEMPTS: usize = 6;

/// The `calico` plugin over its dependencies.
pub struct CalicoPlugin<D, I, S> {
    pub dataplane: D,
    pub ipam: I,
    pub store: S,
    pub host: HostEnv,
}

/// What every per-container verb works out first.
struct Prepared {
    workload: Workload,
    host_if: String,
    mtu: u32,
}

fn store_err(what: &str, e: StoreError) -> CniError {
    CniError::internal(format!("{what}: {e}"))
}

/// The Profile Calico creates for a network without a policy type (plugin.go): egress
/// allowed; ingress allowed from everything for pods, else only from endpoints carrying the
/// network's label; that label applied to every member.
pub fn network_profile(name: &str, k8s: bool) -> Profile {
    let allow = Rule {
        action: Some(Action::Allow),
        ..Default::default()
    };
    let ingress = if k8s {
        allow.clone()
    } else {
        Rule {
            action: Some(Action::Allow),
            source: EntityRule {
                selector: format!("has({name})"),
                ..Default::default()
            },
            ..Default::default()
        }
    };
    Profile {
        metadata: ObjectMeta {
            name: name.to_string(),
            ..Default::default()
        },
        spec: ProfileSpec {
            ingress: vec![ingress],
            egress: vec![allow],
            labels_to_apply: [(name.to_string(), String::new())].into_iter().collect(),
        },
    }
}

impl<D: Dataplane, I: IpamExec, S: EndpointStore> CalicoPlugin<D, I, S> {
    fn prepare(&self, req: &Request<'_>, need_nodename_file: bool) -> Result<Prepared, CniError> {
        let conf = req.conf;
        if need_nodename_file {
            conf.require_nodename_file()?;
        }
        let mtu = conf.effective_mtu(&self.host.paths)?;
        let node = conf.nodename(|| (self.host.hostname)())?;
        let args = CniArgs::parse(&req.env.args)?;
        let workload = Workload::identify(&args, &node, &req.env.container_id, &req.env.ifname);
        let host_if = workload.host_veth_name(&self.host.interface_prefix);
        Ok(Prepared {
            workload,
            host_if,
            mtu,
        })
    }

    fn require_ready(&self) -> Result<(), CniError> {
        match self.store.datastore_ready() {
            Ok(true) => Ok(()),
            Ok(false) => Err(CniError::new(
                ErrorCode::TRY_AGAIN_LATER,
                "Calico is currently not ready to process requests",
            )
            .with_details(
                "ClusterInformation \"default\" is missing or has datastoreReady unset; \
                 calico-node sets it at start-up",
            )),
            Err(e) => Err(store_err("error getting ClusterInformation", e)),
        }
    }

    fn ipam_type<'a>(&self, req: &'a Request<'_>) -> Result<&'a str, CniError> {
        let t = req.conf.ipam.ipam_type.as_str();
        if t.is_empty() {
            return Err(CniError::invalid_netconf(
                "ipam.type is missing: name the IPAM plugin (e.g. \"calico-ipam\")",
            ));
        }
        Ok(t)
    }

    /// Runs the IPAM plugin's DEL with the request's stdin (Calico `ReleaseIPAllocation`).
    fn release_ips(&self, req: &Request<'_>) -> Result<(), CniError> {
        let t = self.ipam_type(req)?;
        self.ipam
            .exec(t, Command::Del, req.env, req.stdin)
            .map(|_| ())
    }

    /// Best-effort cleanup after a failed ADD; the original error is what gets reported.
    fn undo_add(&self, req: &Request<'_>, p: &Prepared, plumbed: bool) {
        if plumbed
            && let Err(e) =
                self.dataplane
                    .teardown(req.env.netns.as_deref(), &p.host_if, &req.env.ifname, true)
        {
            tracing::warn!(error = %e, "failed to remove the interfaces of a failed ADD");
        }
        if let Err(e) = self.release_ips(req) {
            tracing::warn!(error = %e, "failed to release the addresses of a failed ADD");
        }
    }

    /// The existing endpoint of this workload, whatever its interface (plugin.go lists by
    /// the name prefix and keeps the first whose name matches the identifiers).
    fn find_endpoint(&self, w: &Workload) -> Result<Option<WorkloadEndpoint>, CniError> {
        let prefix = w.wep_prefix()?;
        let ids = {
            let mut ids = w.identifiers();
            ids.endpoint.clear();
            ids
        };
        let list = self
            .store
            .list_endpoints(Some(&w.namespace), &prefix)
            .map_err(|e| store_err("error listing WorkloadEndpoints", e))?;
        for ep in list {
            let matches = ids.name_matches(&ep.metadata.name).map_err(|e| {
                CniError::internal(format!("invalid WorkloadEndpoint identifiers: {e}"))
            })?;
            if matches {
                return Ok(Some(ep));
            }
        }
        Ok(None)
    }

    /// A `cni` workload's host veth is `cali` + the first 11 characters of its container ID,
    /// so two containers whose IDs share them (`ctr`'s `default-ctrA` / `default-ctrB`,
    /// cnitool's `cnitool-<hex>`) would get the same name, and plumbing the second would
    /// delete the first one's veth (Calico replaces a "stale" host veth). We refuse instead.
    fn refuse_veth_collision(&self, w: &Workload, host_if: &str) -> Result<(), CniError> {
        if is_k8s(w) {
            return Ok(());
        }
        let mut ids = w.identifiers();
        ids.container_id.clear();
        ids.endpoint.clear();
        let prefix = ids.calculate_name(true).map_err(|e| {
            CniError::internal(format!("error constructing WorkloadEndpoint prefix: {e}"))
        })?;
        let list = self
            .store
            .list_endpoints(Some(&w.namespace), &prefix)
            .map_err(|e| store_err("error listing WorkloadEndpoints", e))?;
        if let Some(other) = list.iter().find(|ep| {
            ep.spec.interface_name == host_if
                && !ep.spec.container_id.is_empty()
                && ep.spec.container_id != w.container_id
        }) {
            return Err(CniError::internal(format!(
                "host interface {host_if} is already used by container {} (WorkloadEndpoint {}): \
                 host interfaces are named after the first 11 characters of the container ID, \
                 which these two containers share",
                other.spec.container_id, other.metadata.name
            )));
        }
        Ok(())
    }

    /// The result for a `cni` workload that already has an endpoint (Calico
    /// `CreateResultFromEndpoint` plus the interfaces).
    fn result_from_endpoint(
        &self,
        req: &Request<'_>,
        ep: &WorkloadEndpoint,
        mtu: u32,
    ) -> Result<CniResult, CniError> {
        let mut r = CniResult::default();
        for n in &ep.spec.ip_networks {
            let net: ipnet::IpNet = n.parse().map_err(|_| {
                CniError::internal(format!(
                    "WorkloadEndpoint {} has an invalid ipNetworks entry {n:?}",
                    ep.metadata.name
                ))
            })?;
            r.ips.push(crate::spec::IpConfig {
                interface: Some(1),
                address: net,
                gateway: None,
            });
        }
        r.interfaces = interfaces(
            &ep.spec.interface_name,
            &req.env.ifname,
            &ep.spec.mac,
            mtu,
            req,
        );
        Ok(r)
    }
}

fn interfaces(
    host_if: &str,
    container_if: &str,
    mac: &str,
    mtu: u32,
    req: &Request<'_>,
) -> Vec<Interface> {
    vec![
        Interface {
            name: host_if.to_string(),
            ..Default::default()
        },
        Interface {
            name: container_if.to_string(),
            mac: mac.to_string(),
            mtu,
            sandbox: req
                .env
                .netns
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            ..Default::default()
        },
    ]
}

fn is_k8s(w: &Workload) -> bool {
    matches!(w.orchestrator, Orchestrator::K8s { .. })
}

impl<D: Dataplane, I: IpamExec, S: EndpointStore> Verbs for CalicoPlugin<D, I, S> {
    fn add(&self, req: &Request<'_>) -> Result<CniResult, CniError> {
        let conf = req.conf;
        let p = self.prepare(req, true)?;
        let w = &p.workload;
        let netns =
            req.env.netns.clone().ok_or_else(|| {
                CniError::invalid_env("required env variables [CNI_NETNS] missing")
            })?;
        if conf.feature_control.ip_addrs_no_ipam && !is_k8s(w) {
            return Err(CniError::new(
                ErrorCode::UNSUPPORTED_FIELD,
                "requested feature is not supported for this runtime: ip_addrs_no_ipam",
            ));
        }
        let ipam_type = self.ipam_type(req)?.to_string();
        if conf.policy_setup_timeout_seconds > 0 {
            // Calico waits for Felix's endpoint-status file and unblocks the pod on timeout
            // anyway; our Felix does not write those files, so waiting would only delay.
            tracing::warn!(
                seconds = conf.policy_setup_timeout_seconds,
                "policy_setup_timeout_seconds is not implemented; not waiting for policy"
            );
        }
        self.require_ready()?;
        // Calico creates the profile after the endpoint; doing it first means a failure here
        // leaves nothing to undo (a profile on its own is harmless, Calico never deletes it).
        if conf.policy.policy_type.is_empty() {
            self.store
                .ensure_profile(&network_profile(&conf.name, is_k8s(w)))
                .map_err(|e| store_err(&format!("error creating profile {}", conf.name), e))?;
        }
        let existing = self.find_endpoint(w)?;
        if existing.is_none() {
            self.refuse_veth_collision(w, &p.host_if)?;
        }

        if !is_k8s(w)
            && let Some(mut ep) = existing.clone()
        {
            // The container is already networked: no IPAM, no plumbing; make sure the profile
            // is on the endpoint and report what it has.
            if !ep.spec.profiles.contains(&conf.name) {
                ep.spec.profiles.push(conf.name.clone());
                ep = self
                    .store
                    .write_endpoint(&ep)
                    .map_err(|e| store_err("error updating WorkloadEndpoint", e))?;
            }
            return self.result_from_endpoint(req, &ep, p.mtu);
        }

        // 1. Addresses from the IPAM plugin.
        let ipam_out = match self.ipam.exec(&ipam_type, Command::Add, req.env, req.stdin) {
            Ok(out) => out,
            Err(e) => {
                // SPEC.md section 4: a failed delegated ADD is followed by its DEL.
                if let Err(de) = self.release_ips(req) {
                    tracing::warn!(error = %de, "IPAM DEL after a failed IPAM ADD failed too");
                }
                return Err(e);
            }
        };
        let ipam_result =
            match CniResult::parse_bytes(&ipam_out, &conf.cni_version, "IPAM plugin result") {
                Ok(r) => r,
                Err(e) => {
                    self.undo_add(req, &p, false);
                    return Err(e);
                }
            };
        if ipam_result.ips.is_empty() {
            self.undo_add(req, &p, false);
            return Err(CniError::internal(
                "IPAM plugin returned no IP addresses in result",
            ));
        }
        let addresses: Vec<ipnet::IpNet> = ipam_result
            .ips
            .iter()
            .map(|i| host_prefix(&i.address))
            .collect();

        // 2. The endpoint object (written after the plumbing, which gives its MAC).
        let wep_name = match &existing {
            Some(ep) => ep.metadata.name.clone(),
            None => w.wep_name()?,
        };
        let mut ep = existing.clone().unwrap_or_default();
        ep.metadata.name = wep_name;
        ep.metadata.namespace = w.namespace.clone();
        // Calico sets the labels it read from the pod; without a policy type that is none
        // (the client adds its namespace/orchestrator labels on write).
        ep.metadata.labels.clear();
        ep.spec.endpoint = match &existing {
            Some(e) if !e.spec.endpoint.is_empty() => e.spec.endpoint.clone(),
            _ => w.endpoint.clone(),
        };
        ep.spec.node = w.node.clone();
        ep.spec.orchestrator = w.orchestrator_name().to_string();
        ep.spec.pod = w.pod().to_string();
        ep.spec.container_id = w.container_id.clone();
        ep.spec.profiles = vec![conf.name.clone()];
        ep.spec.ip_networks = addresses.iter().map(|a| a.to_string()).collect();

        // 3. Plumbing.
        let plumb = PlumbRequest {
            netns: netns.clone(),
            host_if: p.host_if.clone(),
            container_if: req.env.ifname.clone(),
            addresses: addresses.clone(),
            mtu: p.mtu,
            allow_ip_forwarding: conf.container_settings.allow_ip_forwarding,
            expected_container_mac: None,
        };
        let plumbed = match self.dataplane.setup(&plumb) {
            Ok(x) => x,
            Err(e) => {
                // setup undoes itself; only the addresses remain to give back.
                self.undo_add(req, &p, false);
                return Err(e);
            }
        };
        ep.spec.mac = plumbed.container_mac.clone();
        ep.spec.interface_name = p.host_if.clone();

        // 4. The endpoint.
        if let Err(e) = self.store.write_endpoint(&ep) {
            self.undo_add(req, &p, true);
            return Err(store_err(
                &format!("error writing WorkloadEndpoint {}", ep.metadata.name),
                e,
            ));
        }

        // 5. The result: addresses narrowed to host prefixes on the container interface,
        // gateways dropped (plugin.go), IPAM routes and DNS passed through.
        let mut result = ipam_result;
        for (ip, a) in result.ips.iter_mut().zip(&addresses) {
            ip.address = *a;
            ip.gateway = None;
            ip.interface = Some(1);
        }
        result.interfaces = interfaces(
            &p.host_if,
            &req.env.ifname,
            &plumbed.container_mac,
            p.mtu,
            req,
        );
        Ok(result)
    }

    fn del(&self, req: &Request<'_>) -> Result<(), CniError> {
        let p = self.prepare(req, true)?;
        let w = &p.workload;
        self.require_ready()?;
        let wep_name = w.wep_name()?;

        // 1. The endpoint, only if it is ours. `owned_veth` is the host interface of an
        // endpoint we deleted: only then is the host side ours to remove (a pod's newer sandbox
        // has the same host veth name; a `cni` container whose ID shares the first 11
        // characters would too).
        let mut owned_veth: Option<String> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(ep) = self
                .store
                .get_endpoint(&w.namespace, &wep_name)
                .map_err(|e| store_err("error getting WorkloadEndpoint", e))?
            else {
                tracing::info!(endpoint = %wep_name, "WorkloadEndpoint does not exist, continuing with the cleanup");
                break;
            };
            if !ep.spec.container_id.is_empty() && ep.spec.container_id != w.container_id {
                tracing::warn!(
                    endpoint = %wep_name,
                    owner = %ep.spec.container_id,
                    "CNI_CONTAINERID does not match the WorkloadEndpoint's containerID; leaving it"
                );
                break;
            }
            match self
                .store
                .delete_endpoint(&w.namespace, &wep_name, &ep.metadata.resource_version)
            {
                Ok(_) => {
                    owned_veth = Some(if ep.spec.interface_name.is_empty() {
                        p.host_if.clone()
                    } else {
                        ep.spec.interface_name.clone()
                    });
                    break;
                }
                Err(StoreError::Conflict(m)) if attempt < DELETE_ATTEMPTS => {
                    tracing::info!(endpoint = %wep_name, error = %m, "endpoint changed before it could be deleted; retrying");
                }
                Err(StoreError::Conflict(m)) => {
                    return Err(CniError::internal(format!(
                        "error deleting endpoint: endpoint was modified before it could be deleted: {m}"
                    )));
                }
                Err(e) => return Err(store_err("error deleting WorkloadEndpoint", e)),
            }
        }

        // 2. The interfaces: the container side in the netns (which takes the pair with it),
        // and the host side only when it was ours. 3. The addresses, always.
        // Calico removes the interfaces and then releases; we overlap the two. The endpoint is
        // already gone, and a released address goes to the back of its block's free list
        // (FIFO reuse), so it is not handed out again while its old veth is being deleted.
        let (teardown, ipam) = self.dataplane.teardown_while(
            req.env.netns.as_deref(),
            owned_veth.as_deref().unwrap_or(&p.host_if),
            &req.env.ifname,
            owned_veth.is_some(),
            || self.release_ips(req),
        );
        teardown?;
        ipam
    }

    fn check(&self, req: &Request<'_>) -> Result<(), CniError> {
        let conf = req.conf;
        let p = self.prepare(req, true)?;
        let w = &p.workload;
        let Some(prev) = conf.prev_result()? else {
            return Err(CniError::invalid_netconf(
                "CHECK needs the prevResult of the ADD (SPEC.md: the runtime must include it)",
            ));
        };
        let netns =
            req.env.netns.clone().ok_or_else(|| {
                CniError::invalid_env("required env variables [CNI_NETNS] missing")
            })?;
        let sandbox = netns.display().to_string();
        let mut problems: Vec<String> = Vec::new();

        // The prevResult must describe our interfaces.
        let cont_idx = prev
            .interfaces
            .iter()
            .position(|i| i.name == req.env.ifname && i.sandbox == sandbox);
        if cont_idx.is_none() {
            problems.push(format!(
                "prevResult has no interface {} in sandbox {sandbox}",
                req.env.ifname
            ));
        }
        if !prev
            .interfaces
            .iter()
            .any(|i| i.name == p.host_if && i.sandbox.is_empty())
        {
            problems.push(format!("prevResult has no host interface {}", p.host_if));
        }
        let prev_mac = cont_idx
            .and_then(|i| prev.interfaces.get(i))
            .map(|i| i.mac.clone())
            .filter(|m| !m.is_empty());
        let addresses: Vec<ipnet::IpNet> = prev
            .ips
            .iter()
            .filter(|ip| ip.interface.is_none() || ip.interface == cont_idx)
            .map(|ip| host_prefix(&ip.address))
            .collect();
        if addresses.is_empty() {
            problems.push("prevResult has no addresses for the container interface".into());
        }

        // The endpoint must exist, be ours and match.
        let wep_name = w.wep_name()?;
        match self
            .store
            .get_endpoint(&w.namespace, &wep_name)
            .map_err(|e| store_err("error getting WorkloadEndpoint", e))?
        {
            None => problems.push(format!(
                "WorkloadEndpoint {}/{wep_name} does not exist",
                w.namespace
            )),
            Some(ep) => {
                if ep.spec.container_id != w.container_id {
                    problems.push(format!(
                        "WorkloadEndpoint {wep_name} belongs to container {:?}, not {:?}",
                        ep.spec.container_id, w.container_id
                    ));
                }
                if ep.spec.interface_name != p.host_if {
                    problems.push(format!(
                        "WorkloadEndpoint {wep_name} has interfaceName {:?}, expected {:?}",
                        ep.spec.interface_name, p.host_if
                    ));
                }
                let have: BTreeSet<String> = ep
                    .spec
                    .ip_networks
                    .iter()
                    .map(|n| {
                        n.parse::<ipnet::IpNet>()
                            .map(|x| host_prefix(&x).to_string())
                            .unwrap_or_else(|_| n.clone())
                    })
                    .collect();
                let want: BTreeSet<String> = addresses.iter().map(|a| a.to_string()).collect();
                if have != want {
                    problems.push(format!(
                        "WorkloadEndpoint {wep_name} has ipNetworks {have:?}, prevResult has {want:?}"
                    ));
                }
                if let Some(m) = &prev_mac
                    && !ep.spec.mac.eq_ignore_ascii_case(m)
                {
                    problems.push(format!(
                        "WorkloadEndpoint {wep_name} has mac {:?}, prevResult has {m:?}",
                        ep.spec.mac
                    ));
                }
            }
        }

        // The dataplane.
        let plumb = PlumbRequest {
            netns,
            host_if: p.host_if.clone(),
            container_if: req.env.ifname.clone(),
            addresses,
            mtu: p.mtu,
            allow_ip_forwarding: conf.container_settings.allow_ip_forwarding,
            expected_container_mac: prev_mac,
        };
        if let Err(e) = self.dataplane.check(&plumb) {
            problems.push(e.msg);
        }
        if !problems.is_empty() {
            return Err(CniError::internal(format!(
                "CHECK of {} failed: {}",
                req.env.container_id,
                problems.join("; ")
            )));
        }
        // SPEC.md: CHECK is passed on to the delegated IPAM plugin.
        let t = self.ipam_type(req)?;
        self.ipam
            .exec(t, Command::Check, req.env, req.stdin)
            .map(|_| ())
    }

    fn status(&self, req: &Request<'_>) -> Result<(), CniError> {
        req.conf.require_nodename_file().map_err(|e| {
            CniError::new(
                ErrorCode::PLUGIN_NOT_AVAILABLE,
                "calico-node has not started on this host",
            )
            .with_details(e.msg)
        })?;
        // ADD needs the datastore as much as the IPAM plugin.
        let unavailable = |detail: String| {
            CniError::new(
                ErrorCode::PLUGIN_NOT_AVAILABLE,
                "the Calico datastore is not available",
            )
            .with_details(detail)
        };
        match self.store.datastore_ready() {
            Ok(true) => {}
            Ok(false) => {
                return Err(unavailable(
                    "ClusterInformation \"default\" is missing or has datastoreReady unset".into(),
                ));
            }
            Err(e) => return Err(unavailable(e.to_string())),
        }
        let t = self.ipam_type(req)?;
        self.ipam
            .exec(t, Command::Status, req.env, req.stdin)
            .map(|_| ())
    }

    fn gc(&self, req: &Request<'_>) -> Result<(), CniError> {
        let conf = req.conf;
        let Some(valid) = &conf.valid_attachments else {
            return Err(CniError::invalid_netconf(
                "GC needs cni.dev/valid-attachments (the list of attachments to keep)",
            ));
        };
        let valid: BTreeSet<&str> = valid.iter().map(|a| a.container_id.as_str()).collect();
        let node = conf.nodename(|| (self.host.hostname)())?;
        let mut errors: Vec<String> = Vec::new();

        match self.store.list_endpoints(None, "") {
            Ok(eps) => {
                for ep in eps {
                    let s = &ep.spec;
                    let stale = s.node == node
                        && s.profiles.contains(&conf.name)
                        && !s.container_id.is_empty()
                        && !valid.contains(s.container_id.as_str());
                    if !stale {
                        continue;
                    }
                    tracing::info!(endpoint = %ep.metadata.name, container = %s.container_id, "GC: deleting stale WorkloadEndpoint");
                    if let Err(e) = self.store.delete_endpoint(
                        &ep.metadata.namespace,
                        &ep.metadata.name,
                        &ep.metadata.resource_version,
                    ) {
                        errors.push(format!(
                            "deleting WorkloadEndpoint {}/{}: {e}",
                            ep.metadata.namespace, ep.metadata.name
                        ));
                    }
                }
            }
            Err(e) => errors.push(format!("listing WorkloadEndpoints: {e}")),
        }
        match self.ipam_type(req) {
            Ok(t) => {
                if let Err(e) = self.ipam.exec(t, Command::Gc, req.env, req.stdin) {
                    errors.push(format!("IPAM plugin {t} GC: {e}"));
                }
            }
            Err(e) => errors.push(e.msg),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CniError::internal(format!(
                "GC incomplete: {}",
                errors.join("; ")
            )))
        }
    }
}
