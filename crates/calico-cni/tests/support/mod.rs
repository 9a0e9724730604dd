//! In-memory fakes of every trait the plugins use, with failure injection and call logs.
#![allow(dead_code, clippy::unwrap_used, clippy::type_complexity)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use calico_api::profile::Profile;
use calico_api::workloadendpoint::WorkloadEndpoint;
use calico_cni::netconf::HostPaths;
use calico_cni::plugin::{
    AgentError, Allocation, AllocationSource, AssignIpsRequest, AssignRequest, Assigned, Dataplane,
    EndpointStore, HostEnv, IpamAgent, IpamExec, PlumbRequest, Plumbed, PoolSource, StoreError,
};
use calico_cni::spec::{CniEnv, CniError, Command};
use ipnet::IpNet;

// ---- dataplane ---------------------------------------------------------------------------

#[derive(Default)]
pub struct FakeDataplane {
    /// Plumbed workloads by host interface.
    pub links: RefCell<BTreeMap<String, PlumbRequest>>,
    pub fail_setup: RefCell<Option<String>>,
    pub fail_teardown: RefCell<Option<String>>,
    pub teardowns: RefCell<Vec<(Option<PathBuf>, String, String, bool)>>,
    pub setups: Cell<usize>,
}

pub const CONTAINER_MAC: &str = "0a:58:0a:f4:00:05";

impl Dataplane for FakeDataplane {
    fn setup(&self, req: &PlumbRequest) -> Result<Plumbed, CniError> {
        self.setups.set(self.setups.get() + 1);
        if let Some(m) = self.fail_setup.borrow().clone() {
            return Err(CniError::internal(m));
        }
        // A stale host veth of the same name is replaced, as Calico does.
        self.links
            .borrow_mut()
            .insert(req.host_if.clone(), req.clone());
        Ok(Plumbed {
            host_mac: "ee:ee:ee:ee:ee:ee".into(),
            container_mac: CONTAINER_MAC.into(),
        })
    }

    fn teardown(
        &self,
        netns: Option<&Path>,
        host_if: &str,
        container_if: &str,
        host_side: bool,
    ) -> Result<(), CniError> {
        self.teardowns.borrow_mut().push((
            netns.map(Path::to_path_buf),
            host_if.to_string(),
            container_if.to_string(),
            host_side,
        ));
        if let Some(m) = self.fail_teardown.borrow().clone() {
            return Err(CniError::internal(m));
        }
        let mut links = self.links.borrow_mut();
        let remove = match links.get(host_if) {
            // The container side lives in the netns it was made in; deleting it takes the pair.
            Some(l) => host_side || netns == Some(l.netns.as_path()),
            None => false,
        };
        if remove {
            links.remove(host_if);
        }
        Ok(())
    }

    fn check(&self, req: &PlumbRequest) -> Result<Plumbed, CniError> {
        let links = self.links.borrow();
        let Some(have) = links.get(&req.host_if) else {
            return Err(CniError::internal(format!(
                "host interface {} does not exist",
                req.host_if
            )));
        };
        let mut problems = Vec::new();
        if have.netns != req.netns {
            problems.push(format!("container side is in {}", have.netns.display()));
        }
        if have.addresses != req.addresses {
            problems.push(format!("container has addresses {:?}", have.addresses));
        }
        if have.mtu != req.mtu {
            problems.push(format!("MTU is {}", have.mtu));
        }
        if let Some(m) = &req.expected_container_mac
            && m != CONTAINER_MAC
        {
            problems.push(format!("container MAC is {CONTAINER_MAC}, expected {m}"));
        }
        if problems.is_empty() {
            Ok(Plumbed {
                host_mac: "ee:ee:ee:ee:ee:ee".into(),
                container_mac: CONTAINER_MAC.into(),
            })
        } else {
            Err(CniError::internal(problems.join("; ")))
        }
    }
}

// ---- IPAM plugin exec --------------------------------------------------------------------

pub struct FakeIpamExec {
    /// What ADD prints (a host-local-like result by default).
    pub add_output: RefCell<Result<String, CniError>>,
    pub fail: RefCell<BTreeMap<&'static str, CniError>>,
    pub calls: RefCell<Vec<(String, Command, Vec<u8>)>>,
}

impl Default for FakeIpamExec {
    fn default() -> Self {
        FakeIpamExec {
            add_output: RefCell::new(Ok(r#"{"cniVersion":"1.0.0",
                "ips":[{"address":"10.244.220.81/26"}],
                "routes":[{"dst":"10.244.220.81/26"}]}"#
                .to_string())),
            fail: RefCell::new(BTreeMap::new()),
            calls: RefCell::new(Vec::new()),
        }
    }
}

impl FakeIpamExec {
    pub fn commands(&self) -> Vec<Command> {
        self.calls.borrow().iter().map(|c| c.1).collect()
    }
    pub fn fail_on(&self, cmd: &'static str, e: CniError) {
        self.fail.borrow_mut().insert(cmd, e);
    }
}

impl IpamExec for FakeIpamExec {
    fn exec(
        &self,
        plugin: &str,
        command: Command,
        _env: &CniEnv,
        stdin: &[u8],
    ) -> Result<Vec<u8>, CniError> {
        self.calls
            .borrow_mut()
            .push((plugin.to_string(), command, stdin.to_vec()));
        if let Some(e) = self.fail.borrow().get(command.as_str()) {
            return Err(e.clone());
        }
        match command {
            Command::Add => self.add_output.borrow().clone().map(String::into_bytes),
            _ => Ok(Vec::new()),
        }
    }
}

// ---- datastore ---------------------------------------------------------------------------

pub struct FakeStore {
    pub ready: Cell<bool>,
    pub weps: RefCell<BTreeMap<(String, String), WorkloadEndpoint>>,
    pub profiles: RefCell<BTreeMap<String, Profile>>,
    pub revision: Cell<u64>,
    pub fail_write: RefCell<Option<StoreError>>,
    pub fail_get: RefCell<Option<StoreError>>,
    pub fail_profile: RefCell<Option<StoreError>>,
    /// This many deletes answer Conflict before one succeeds.
    pub delete_conflicts: Cell<usize>,
    pub deletes: RefCell<Vec<(String, String)>>,
}

impl Default for FakeStore {
    fn default() -> Self {
        FakeStore {
            ready: Cell::new(true),
            weps: RefCell::new(BTreeMap::new()),
            profiles: RefCell::new(BTreeMap::new()),
            revision: Cell::new(10),
            fail_write: RefCell::new(None),
            fail_get: RefCell::new(None),
            fail_profile: RefCell::new(None),
            delete_conflicts: Cell::new(0),
            deletes: RefCell::new(Vec::new()),
        }
    }
}

impl FakeStore {
    fn next_rev(&self) -> String {
        self.revision.set(self.revision.get() + 1);
        self.revision.get().to_string()
    }
    pub fn insert(&self, mut wep: WorkloadEndpoint) {
        wep.metadata.resource_version = self.next_rev();
        self.weps.borrow_mut().insert(
            (wep.metadata.namespace.clone(), wep.metadata.name.clone()),
            wep,
        );
    }
    pub fn get(&self, ns: &str, name: &str) -> Option<WorkloadEndpoint> {
        self.weps
            .borrow()
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }
    pub fn count(&self) -> usize {
        self.weps.borrow().len()
    }
}

impl EndpointStore for FakeStore {
    fn datastore_ready(&self) -> Result<bool, StoreError> {
        if let Some(e) = self.fail_get.borrow().clone() {
            return Err(e);
        }
        Ok(self.ready.get())
    }

    fn list_endpoints(
        &self,
        namespace: Option<&str>,
        prefix: &str,
    ) -> Result<Vec<WorkloadEndpoint>, StoreError> {
        if let Some(e) = self.fail_get.borrow().clone() {
            return Err(e);
        }
        Ok(self
            .weps
            .borrow()
            .iter()
            .filter(|((ns, name), _)| namespace.is_none_or(|n| n == ns) && name.starts_with(prefix))
            .map(|(_, w)| w.clone())
            .collect())
    }

    fn get_endpoint(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<WorkloadEndpoint>, StoreError> {
        if let Some(e) = self.fail_get.borrow().clone() {
            return Err(e);
        }
        Ok(self.get(namespace, name))
    }

    fn write_endpoint(&self, wep: &WorkloadEndpoint) -> Result<WorkloadEndpoint, StoreError> {
        if let Some(e) = self.fail_write.borrow().clone() {
            return Err(e);
        }
        let key = (wep.metadata.namespace.clone(), wep.metadata.name.clone());
        let current = self.weps.borrow().get(&key).cloned();
        match (&current, wep.metadata.resource_version.as_str()) {
            (Some(_), "") => return Err(StoreError::Other("already exists".into())),
            (None, rv) if !rv.is_empty() => return Err(StoreError::Other("does not exist".into())),
            (Some(c), rv) if !rv.is_empty() && c.metadata.resource_version != rv => {
                return Err(StoreError::Conflict("resourceVersion mismatch".into()));
            }
            _ => {}
        }
        let mut stored = wep.clone();
        stored.metadata.resource_version = self.next_rev();
        self.weps.borrow_mut().insert(key, stored.clone());
        Ok(stored)
    }

    fn delete_endpoint(
        &self,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<bool, StoreError> {
        self.deletes
            .borrow_mut()
            .push((namespace.to_string(), name.to_string()));
        if self.delete_conflicts.get() > 0 {
            self.delete_conflicts.set(self.delete_conflicts.get() - 1);
            // Somebody touched it: bump its revision so the next read sees a new one.
            let rev = self.next_rev();
            if let Some(w) = self
                .weps
                .borrow_mut()
                .get_mut(&(namespace.to_string(), name.to_string()))
            {
                w.metadata.resource_version = rev;
            }
            return Err(StoreError::Conflict("modified concurrently".into()));
        }
        let key = (namespace.to_string(), name.to_string());
        let mut weps = self.weps.borrow_mut();
        match weps.get(&key) {
            None => Ok(false),
            Some(w)
                if !resource_version.is_empty()
                    && w.metadata.resource_version != resource_version =>
            {
                Err(StoreError::Conflict("resourceVersion mismatch".into()))
            }
            Some(_) => {
                weps.remove(&key);
                Ok(true)
            }
        }
    }

    fn ensure_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        if let Some(e) = self.fail_profile.borrow().clone() {
            return Err(e);
        }
        self.profiles
            .borrow_mut()
            .entry(profile.metadata.name.clone())
            .or_insert_with(|| profile.clone());
        Ok(())
    }
}

// ---- IPAM agent --------------------------------------------------------------------------

pub struct FakeAgent {
    pub node: String,
    pub up: Cell<bool>,
    /// Handle -> addresses held.
    pub held: RefCell<BTreeMap<String, Vec<IpNet>>>,
    /// Addresses handed out next, per family.
    pub next4: RefCell<Vec<IpNet>>,
    pub next6: RefCell<Vec<IpNet>>,
    pub refuse: RefCell<Option<(String, String)>>,
    pub requests: RefCell<Vec<AssignRequest>>,
    /// Specific-address requests received.
    pub ips_requests: RefCell<Vec<AssignIpsRequest>>,
    /// Answer `assign_ips` with this (holding it) instead of what was asked: a broken agent.
    pub ips_answer: RefCell<Option<Assigned>>,
    pub released_handles: RefCell<Vec<String>>,
    pub fail_release: RefCell<BTreeMap<String, AgentError>>,
}

impl FakeAgent {
    pub fn new(node: &str) -> FakeAgent {
        FakeAgent {
            node: node.into(),
            up: Cell::new(true),
            held: RefCell::new(BTreeMap::new()),
            next4: RefCell::new(vec!["10.244.220.81/26".parse().unwrap()]),
            next6: RefCell::new(vec!["fd00:10:244::5/122".parse().unwrap()]),
            refuse: RefCell::new(None),
            requests: RefCell::new(Vec::new()),
            ips_requests: RefCell::new(Vec::new()),
            ips_answer: RefCell::new(None),
            released_handles: RefCell::new(Vec::new()),
            fail_release: RefCell::new(BTreeMap::new()),
        }
    }
    fn check_up(&self) -> Result<(), AgentError> {
        if self.up.get() {
            Ok(())
        } else {
            Err(AgentError::Unreachable(
                "calico-node's IPAM service at /tmp/none.sock is unreachable (Connection refused)"
                    .into(),
            ))
        }
    }
    pub fn held_by(&self, handle: &str) -> Vec<IpNet> {
        self.held.borrow().get(handle).cloned().unwrap_or_default()
    }
}

impl IpamAgent for FakeAgent {
    fn ping(&self) -> Result<String, AgentError> {
        self.check_up()?;
        Ok(self.node.clone())
    }

    fn assign(&self, req: &AssignRequest) -> Result<Assigned, AgentError> {
        self.check_up()?;
        self.requests.borrow_mut().push(req.clone());
        if let Some((code, message)) = self.refuse.borrow().clone() {
            return Err(AgentError::Remote { code, message });
        }
        let take = |pool: &RefCell<Vec<IpNet>>, n: u32| -> Vec<IpNet> {
            let mut p = pool.borrow_mut();
            let k = (n as usize).min(p.len());
            p.drain(..k).collect()
        };
        let a = Assigned {
            ipv4: take(&self.next4, req.num4),
            ipv6: take(&self.next6, req.num6),
        };
        self.held
            .borrow_mut()
            .entry(req.handle_id.clone())
            .or_default()
            .extend(a.ipv4.iter().chain(&a.ipv6).copied());
        Ok(a)
    }

    /// All or nothing, like calico-node: every address must lie in the fake's pools
    /// (10.244.0.0/16, fd00:10:244::/48) and be free.
    fn assign_ips(&self, req: &AssignIpsRequest) -> Result<Assigned, AgentError> {
        self.check_up()?;
        self.ips_requests.borrow_mut().push(req.clone());
        if let Some((code, message)) = self.refuse.borrow().clone() {
            return Err(AgentError::Remote { code, message });
        }
        let a = match self.ips_answer.borrow().clone() {
            Some(a) => a,
            None => {
                let pools: [IpNet; 2] = [
                    "10.244.0.0/16".parse().unwrap(),
                    "fd00:10:244::/48".parse().unwrap(),
                ];
                let mut a = Assigned::default();
                for ip in &req.ips {
                    if !pools.iter().any(|p| p.contains(ip)) {
                        return Err(AgentError::Remote {
                            code: "no_pool".into(),
                            message: format!(
                                "The provided IP address {ip} is not in a configured pool"
                            ),
                        });
                    }
                    if self
                        .held
                        .borrow()
                        .values()
                        .flatten()
                        .any(|n| n.addr() == *ip)
                    {
                        return Err(AgentError::Remote {
                            code: "address_in_use".into(),
                            message: format!("Address already assigned in block: {ip}"),
                        });
                    }
                    match ip {
                        IpAddr::V4(_) => a.ipv4.push(IpNet::from(*ip)),
                        IpAddr::V6(_) => a.ipv6.push(IpNet::from(*ip)),
                    }
                }
                a
            }
        };
        self.held
            .borrow_mut()
            .entry(req.handle_id.clone())
            .or_default()
            .extend(a.ipv4.iter().chain(&a.ipv6).copied());
        Ok(a)
    }

    fn release_handle(&self, _node: &str, handle_id: &str) -> Result<usize, AgentError> {
        self.check_up()?;
        if let Some(e) = self.fail_release.borrow().get(handle_id) {
            return Err(e.clone());
        }
        self.released_handles
            .borrow_mut()
            .push(handle_id.to_string());
        Ok(self
            .held
            .borrow_mut()
            .remove(handle_id)
            .map(|v| v.len())
            .unwrap_or(0))
    }

    fn release_ips(
        &self,
        _node: &str,
        ips: &[IpAddr],
        handle_id: Option<&str>,
    ) -> Result<Vec<IpAddr>, AgentError> {
        self.check_up()?;
        let mut held = self.held.borrow_mut();
        let mut unallocated = Vec::new();
        for ip in ips {
            let mut found = false;
            for (h, v) in held.iter_mut() {
                if handle_id.is_some_and(|x| x != h) {
                    continue;
                }
                if let Some(pos) = v.iter().position(|n| n.addr() == *ip) {
                    v.remove(pos);
                    found = true;
                }
            }
            if !found {
                unallocated.push(*ip);
            }
        }
        held.retain(|_, v| !v.is_empty());
        Ok(unallocated)
    }
}

impl AllocationSource for FakeAgent {
    fn allocations(&self) -> Result<Vec<Allocation>, CniError> {
        Ok(self
            .held
            .borrow()
            .iter()
            .flat_map(|(h, v)| {
                v.iter().map(move |n| Allocation {
                    ip: n.addr(),
                    handle_id: Some(h.clone()),
                    attrs: [("node".to_string(), self.node.clone())]
                        .into_iter()
                        .collect(),
                })
            })
            .collect())
    }
}

/// Allocations as given (for GC tests with other nodes' handles).
pub struct FixedAllocations(pub Vec<Allocation>);

impl AllocationSource for FixedAllocations {
    fn allocations(&self) -> Result<Vec<Allocation>, CniError> {
        Ok(self.0.clone())
    }
}

#[derive(Default)]
pub struct FakePools(pub BTreeMap<String, IpNet>);

impl PoolSource for FakePools {
    fn pool_cidr(&self, name: &str) -> Result<Option<IpNet>, CniError> {
        Ok(self.0.get(name).copied())
    }
}

impl PoolSource for &FakePools {
    fn pool_cidr(&self, name: &str) -> Result<Option<IpNet>, CniError> {
        Ok(self.0.get(name).copied())
    }
}

// ---- host --------------------------------------------------------------------------------

/// A host with a node-name file (`node1`) and no MTU file, in a temporary directory.
pub struct TestHost {
    pub dir: tempfile::TempDir,
}

impl TestHost {
    pub fn new() -> TestHost {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nodename"), "node1").unwrap();
        TestHost { dir }
    }
    pub fn nodename_file(&self) -> PathBuf {
        self.dir.path().join("nodename")
    }
    pub fn env(&self) -> HostEnv {
        HostEnv {
            paths: HostPaths {
                mtu_file: self.dir.path().join("mtu"),
            },
            interface_prefix: "cali".into(),
            hostname: Box::new(|| Ok("ignored-host".into())),
            now: Box::new(|| {
                use chrono::TimeZone;
                chrono::Utc
                    .with_ymd_and_hms(2026, 11, 22, 17, 0, 0)
                    .unwrap()
            }),
        }
    }
}

/// A `CniEnv` for `command`.
pub fn cni_env(command: Command, container_id: &str, netns: Option<&str>, args: &str) -> CniEnv {
    CniEnv {
        command,
        container_id: container_id.into(),
        netns: netns.map(PathBuf::from),
        ifname: "eth0".into(),
        args: args.into(),
        path: vec![PathBuf::from("/opt/cni/bin")],
    }
}
