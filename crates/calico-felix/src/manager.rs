//! The route manager: takes the kernel from whatever it holds to what [`LocalState`] asks for,
//! through a [`RouteDataplane`]. One call is one reconciliation against a fresh dump, so drift
//! (a route someone deleted, a sysctl someone changed) is repaired by the next call.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::dataplane::{DataplaneError, RouteDataplane};
use crate::model::LocalState;
use crate::routes::{self, DesiredRoutes};

/// What one reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Route changes made.
    pub applied: usize,
    /// Operations that failed (each described); they are retried on the next sync.
    pub failures: Vec<String>,
    /// Workload routes waiting for their interface.
    pub waiting: usize,
    /// Routes of ours the table should now hold.
    pub managed_routes: usize,
    /// Local workload interfaces present.
    pub interfaces: usize,
}

/// What was last applied to a workload interface, so unchanged interfaces are not touched.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InterfaceSettings {
    index: u32,
    networks: Vec<IpNet>,
    mac: Option<[u8; 6]>,
}

/// Reconciles routes, host-side interface settings and neighbour entries.
pub struct RouteManager<D> {
    dataplane: D,
    protocol: u8,
    configured: BTreeMap<String, InterfaceSettings>,
}

impl<D: RouteDataplane> RouteManager<D> {
    pub fn new(dataplane: D, protocol: u8) -> Self {
        RouteManager {
            dataplane,
            protocol,
            configured: BTreeMap::new(),
        }
    }

    pub fn dataplane_mut(&mut self) -> &mut D {
        &mut self.dataplane
    }

    /// One reconciliation. `full` re-asserts interface settings too (Felix re-applies them
    /// on its periodic refresh). Returns `Err` only when the kernel could not be read at all;
    /// individual failed changes are in the report.
    pub fn sync(&mut self, state: &LocalState, full: bool) -> Result<SyncReport, DataplaneError> {
        let desired = DesiredRoutes::from_state(state);
        let links = self.dataplane.links()?;
        let mut report = SyncReport::default();
        if full {
            self.configured.clear();
        }
        self.configured
            .retain(|name, s| links.get(name) == Some(&s.index));
        for ep in state.endpoints.values() {
            let Some(&index) = links.get(&ep.interface) else {
                continue;
            };
            report.interfaces += 1;
            let want = InterfaceSettings {
                index,
                networks: ep.networks.clone(),
                mac: ep.mac,
            };
            if self.configured.get(&ep.interface) == Some(&want) {
                continue;
            }
            match self.configure(&ep.interface, &want) {
                Ok(()) => {
                    self.configured.insert(ep.interface.clone(), want);
                }
                Err(e) => report.failures.push(e.to_string()),
            }
        }
        let applied = self.sync_desired(&desired, &links)?;
        report.applied = applied.applied;
        report.failures.extend(applied.failures);
        report.waiting = applied.waiting;
        report.managed_routes = applied.managed_routes;
        for (dst, key) in &desired.conflicts {
            tracing::warn!(%dst, endpoint = %key, "address claimed by two local endpoints; routing it to the first");
        }
        Ok(report)
    }

    /// Takes the kernel to `desired` for routes of our protocol only: the part of [`Self::sync`]
    /// that does not depend on workloads, for other owners of a route protocol (the BGP
    /// speaker's learned routes). `links` as returned by [`RouteDataplane::links`].
    pub fn sync_desired(
        &mut self,
        desired: &DesiredRoutes,
        links: &BTreeMap<String, u32>,
    ) -> Result<SyncReport, DataplaneError> {
        let actual = self.dataplane.routes()?;
        let plan = routes::plan(desired, links, &actual, self.protocol);
        let mut report = SyncReport {
            waiting: plan.waiting.len(),
            managed_routes: desired.routes.len() - plan.waiting.len(),
            ..SyncReport::default()
        };
        for result in self.dataplane.apply_routes(&plan.ops) {
            match result {
                Ok(_) => report.applied += 1,
                Err(e) => report.failures.push(e.to_string()),
            }
        }
        Ok(report)
    }

    fn configure(&mut self, interface: &str, s: &InterfaceSettings) -> Result<(), DataplaneError> {
        let ipv4 = s.networks.iter().any(|n| matches!(n, IpNet::V4(_)));
        let ipv6 = s.networks.iter().any(|n| matches!(n, IpNet::V6(_)));
        self.dataplane.configure_interface(interface, ipv4, ipv6)?;
        if let Some(mac) = s.mac {
            // Felix programs a permanent ARP entry for each IPv4 address so the host never has
            // to resolve its own workloads (`felix/routetable` ARP handling).
            for n in &s.networks {
                if let IpAddr::V4(ip) = n.addr() {
                    self.dataplane.set_neighbour(s.index, IpAddr::V4(ip), mac)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory kernel for the manager and Felix loop tests.
    use super::*;
    use crate::routes::KernelRoute;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    pub struct FakeKernel {
        pub links: BTreeMap<String, u32>,
        pub routes: Vec<KernelRoute>,
        pub configured: Vec<(String, bool, bool)>,
        pub neighbours: Vec<(u32, IpAddr, [u8; 6])>,
        pub fail_replace_of: Option<IpNet>,
        pub fail_dump: bool,
        pub forwarding: Option<(bool, bool)>,
    }

    #[derive(Clone, Default)]
    pub struct FakeDataplane(pub Arc<Mutex<FakeKernel>>);

    impl RouteDataplane for FakeDataplane {
        fn links(&mut self) -> Result<BTreeMap<String, u32>, DataplaneError> {
            Ok(self.0.lock().unwrap().links.clone())
        }
        fn routes(&mut self) -> Result<Vec<KernelRoute>, DataplaneError> {
            let k = self.0.lock().unwrap();
            if k.fail_dump {
                return Err(DataplaneError("dumping routes: injected".into()));
            }
            Ok(k.routes.clone())
        }
        fn replace_route(&mut self, r: &KernelRoute) -> Result<(), DataplaneError> {
            let mut k = self.0.lock().unwrap();
            if k.fail_replace_of == Some(r.dst) {
                return Err(DataplaneError(format!(
                    "replacing route {}: injected",
                    r.dst
                )));
            }
            k.routes
                .retain(|a| !(a.dst == r.dst && a.table == r.table && a.metric == r.metric));
            k.routes.push(r.clone());
            Ok(())
        }
        fn delete_route(&mut self, r: &KernelRoute) -> Result<bool, DataplaneError> {
            let mut k = self.0.lock().unwrap();
            let before = k.routes.len();
            k.routes.retain(|a| a != r);
            Ok(before != k.routes.len())
        }
        fn configure_interface(
            &mut self,
            i: &str,
            v4: bool,
            v6: bool,
        ) -> Result<(), DataplaneError> {
            self.0
                .lock()
                .unwrap()
                .configured
                .push((i.to_string(), v4, v6));
            Ok(())
        }
        fn set_neighbour(
            &mut self,
            index: u32,
            ip: IpAddr,
            mac: [u8; 6],
        ) -> Result<(), DataplaneError> {
            self.0.lock().unwrap().neighbours.push((index, ip, mac));
            Ok(())
        }
        fn enable_forwarding(&mut self, ipv4: bool, ipv6: bool) -> Result<(), DataplaneError> {
            self.0.lock().unwrap().forwarding = Some((ipv4, ipv6));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::*;
    use super::*;
    use crate::model::LocalEndpoint;

    fn state() -> LocalState {
        let mut s = LocalState::default();
        s.endpoints.insert(
            "a".into(),
            LocalEndpoint {
                key: "a".into(),
                interface: "cali1".into(),
                networks: vec!["10.0.0.1/32".parse().unwrap()],
                mac: Some([2, 0, 0, 0, 0, 1]),
            },
        );
        s.blocks.insert("b".into(), "10.0.0.0/26".parse().unwrap());
        s
    }

    #[test]
    fn sync_programs_repairs_and_is_quiet_when_in_sync() {
        let dp = FakeDataplane::default();
        dp.0.lock().unwrap().links.insert("cali1".into(), 5);
        let mut m = RouteManager::new(dp.clone(), 80);
        let r = m.sync(&state(), false).unwrap();
        assert_eq!((r.applied, r.managed_routes, r.interfaces), (2, 2, 1));
        assert_eq!(
            dp.0.lock().unwrap().configured,
            vec![("cali1".to_string(), true, false)]
        );
        assert_eq!(dp.0.lock().unwrap().neighbours.len(), 1);
        // Nothing to do the second time, and the interface is not re-configured.
        let r = m.sync(&state(), false).unwrap();
        assert_eq!(r.applied, 0);
        assert_eq!(dp.0.lock().unwrap().configured.len(), 1);
        // Someone deletes the workload route: the next sync puts it back.
        dp.0.lock()
            .unwrap()
            .routes
            .retain(|r| r.dst.prefix_len() != 32);
        assert_eq!(m.sync(&state(), false).unwrap().applied, 1);
        // A full sync re-asserts interface settings.
        m.sync(&state(), true).unwrap();
        assert_eq!(dp.0.lock().unwrap().configured.len(), 2);
    }

    #[test]
    fn failures_are_reported_and_retried() {
        let dp = FakeDataplane::default();
        dp.0.lock().unwrap().links.insert("cali1".into(), 5);
        dp.0.lock().unwrap().fail_replace_of = Some("10.0.0.1/32".parse().unwrap());
        let mut m = RouteManager::new(dp.clone(), 80);
        let r = m.sync(&state(), false).unwrap();
        assert_eq!(r.applied, 1);
        assert_eq!(r.failures.len(), 1);
        assert!(r.failures[0].contains("10.0.0.1/32"));
        dp.0.lock().unwrap().fail_replace_of = None;
        let r = m.sync(&state(), false).unwrap();
        assert_eq!((r.applied, r.failures.len()), (1, 0));
        dp.0.lock().unwrap().fail_dump = true;
        assert!(m.sync(&state(), false).is_err());
    }

    #[test]
    fn interface_recreated_under_the_same_name_is_reconfigured() {
        let dp = FakeDataplane::default();
        dp.0.lock().unwrap().links.insert("cali1".into(), 5);
        let mut m = RouteManager::new(dp.clone(), 80);
        m.sync(&state(), false).unwrap();
        dp.0.lock().unwrap().links.insert("cali1".into(), 9);
        dp.0.lock().unwrap().routes.clear();
        let r = m.sync(&state(), false).unwrap();
        assert_eq!(r.applied, 2);
        let k = dp.0.lock().unwrap();
        assert_eq!(k.configured.len(), 2);
        assert!(k.routes.iter().any(|r| r.oif == Some(9)));
    }
}
