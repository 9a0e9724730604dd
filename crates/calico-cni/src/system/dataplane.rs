//! [`Dataplane`] over calico-netlink's `workload` module (Contract 1), run from the runtime's
//! network namespace (the host side lands where the plugin was started).

use std::path::Path;

use calico_netlink::workload::{self, WorkloadSpec};
use calico_netlink::{
    ErrorKind, NetNs, NetlinkError, RTPROT_BOOT, RouteSocket, format_mac, parse_mac,
};

use crate::plugin::{Dataplane, PlumbRequest, Plumbed};
use crate::spec::CniError;

/// Plumbs workloads with netlink.
#[derive(Debug, Clone, Default)]
pub struct NetlinkDataplane;

fn nl(e: NetlinkError) -> CniError {
    CniError::internal(e.to_string())
}

fn open_container_ns(path: &Path) -> Result<NetNs, CniError> {
    NetNs::open(path).map_err(|e| {
        CniError::internal(format!(
            "failed to open the container netns {}: {e}",
            path.display()
        ))
    })
}

fn families(req: &PlumbRequest) -> (bool, bool) {
    (
        req.addresses.iter().any(|a| a.addr().is_ipv4()),
        req.addresses.iter().any(|a| a.addr().is_ipv6()),
    )
}

impl Dataplane for NetlinkDataplane {
    fn setup(&self, req: &PlumbRequest) -> Result<Plumbed, CniError> {
        let host = NetNs::current().map_err(nl)?;
        let cont = open_container_ns(&req.netns)?;
        // dataplane_linux.go: a host veth of the same name is from an earlier sandbox of the
        // same workload; it goes before the new pair is made.
        let hs = RouteSocket::open().map_err(nl)?;
        if hs.delete_link(&req.host_if).map_err(nl)? {
            tracing::info!(host_if = %req.host_if, "deleted a stale host veth");
        }
        let spec = WorkloadSpec {
            host_ns: &host,
            container_ns: &cont,
            host_if: &req.host_if,
            container_if: &req.container_if,
            addresses: &req.addresses,
            mtu: req.mtu,
            container_mac: None,
            host_route_protocol: RTPROT_BOOT,
        };
        let ifs = workload::setup_workload(&spec).map_err(nl)?;
        // configureContainerSysctls: forwarding inside the container as configured.
        let (v4, v6) = families(req);
        let allow = req.allow_ip_forwarding;
        let fwd = cont
            .run(|| workload::configure_container_forwarding(v4, v6, allow))
            .and_then(|r| r);
        if let Err(e) = fwd {
            if let Err(undo) =
                workload::teardown_workload(&host, Some(&cont), &req.host_if, &req.container_if)
            {
                tracing::warn!(error = %undo, "failed to remove the veth after a sysctl failure");
            }
            return Err(nl(e.context("configuring forwarding in the container")));
        }
        Ok(Plumbed {
            host_mac: format_mac(&ifs.host_mac),
            container_mac: format_mac(&ifs.container_mac),
        })
    }

    fn teardown_while<T>(
        &self,
        netns: Option<&Path>,
        host_if: &str,
        container_if: &str,
        host_side: bool,
        meanwhile: impl FnOnce() -> T,
    ) -> (Result<(), CniError>, T) {
        std::thread::scope(|s| {
            let worker =
                s.spawn(|| NetlinkDataplane.teardown(netns, host_if, container_if, host_side));
            let other = meanwhile();
            let teardown = worker
                .join()
                .unwrap_or_else(|_| Err(CniError::internal("interface teardown thread panicked")));
            (teardown, other)
        })
    }

    fn teardown(
        &self,
        netns: Option<&Path>,
        host_if: &str,
        container_if: &str,
        host_side: bool,
    ) -> Result<(), CniError> {
        // A netns that is gone (or no longer a namespace file) took the container side with it
        // (Calico: "Workload's netns already gone. Nothing to do.").
        let cont = match netns {
            None => None,
            Some(p) => match NetNs::open(p) {
                Ok(ns) => Some(ns),
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidArgument) => {
                    tracing::info!(netns = %p.display(), "workload's netns already gone");
                    None
                }
                Err(e) => return Err(nl(e)),
            },
        };
        if host_side {
            let host = NetNs::current().map_err(nl)?;
            workload::teardown_workload(&host, cont.as_ref(), host_if, container_if).map_err(nl)?;
        } else if let Some(ns) = &cont {
            let s = RouteSocket::open_in(ns).map_err(nl)?;
            s.delete_link(container_if).map_err(nl)?;
        }
        Ok(())
    }

    fn check(&self, req: &PlumbRequest) -> Result<Plumbed, CniError> {
        let host = NetNs::current().map_err(nl)?;
        let cont = open_container_ns(&req.netns)?;
        let mac = match &req.expected_container_mac {
            None => None,
            Some(m) => Some(parse_mac(m).ok_or_else(|| {
                CniError::internal(format!("prevResult has an invalid container MAC {m:?}"))
            })?),
        };
        let spec = WorkloadSpec {
            host_ns: &host,
            container_ns: &cont,
            host_if: &req.host_if,
            container_if: &req.container_if,
            addresses: &req.addresses,
            mtu: req.mtu,
            container_mac: mac,
            host_route_protocol: RTPROT_BOOT,
        };
        let ifs = workload::check_workload(&spec).map_err(nl)?;
        Ok(Plumbed {
            host_mac: format_mac(&ifs.host_mac),
            container_mac: format_mac(&ifs.container_mac),
        })
    }
}
