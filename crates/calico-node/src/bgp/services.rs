//! Service address advertisement from `BGPConfiguration` `default`, as confd's route
//! generator does without Kubernetes services (`confd/pkg/backends/calico/client.go`,
//! `updateGlobalRoutes`): every node originates the `serviceClusterIPs` CIDRs, the
//! `serviceExternalIPs` CIDRs that are ranges (single addresses are per-service /32s, which
//! need the Kubernetes service watcher), and, with `serviceLoadBalancerAggregation: Enabled`
//! (the default), the `serviceLoadBalancerIPs` ranges. Each advertised CIDR is also kept out
//! of the kernel (`/rejectcidrs`). A node labelled
//! `node.kubernetes.io/exclude-from-external-load-balancers` advertises none of them
//! (`ExcludeServiceAdvertisement`). A route reflector passes on the external and
//! LoadBalancer ranges it learns (`bird_ipam.cfg.template`).

use std::collections::BTreeMap;

use calico_api::bgpconfig::BGPConfiguration;
use calico_bgp_policy::ServiceRoutes;
use ipnet::IpNet;

/// The label that makes a node not advertise service ranges.
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// What the node advertises for services, per family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    pub v4: ServiceRoutes,
    pub v6: ServiceRoutes,
    pub warnings: Vec<String>,
}

impl Services {
    /// Every CIDR to originate.
    pub fn originated(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.v4
            .advertised
            .iter()
            .chain(&self.v6.advertised)
            .copied()
    }
}

/// Computes the service routes from the global BGPConfiguration (the one named `default`).
pub fn services(
    configs: &[BGPConfiguration],
    node_labels: &BTreeMap<String, String>,
    route_reflector: bool,
) -> Services {
    let mut out = Services::default();
    let Some(global) = configs.iter().find(|c| c.metadata.name == "default") else {
        return out;
    };
    let spec = &global.spec;
    let mut parse = |what: &str, cidr: &str| -> Option<IpNet> {
        if cidr.is_empty() {
            // The CRD allows an empty CIDR; confd skips it.
            return None;
        }
        match cidr.parse::<IpNet>() {
            Ok(n) => Some(n.trunc()),
            Err(_) => {
                out.warnings.push(format!(
                    "BGPConfiguration default: {what} {cidr:?} is not a CIDR; ignored"
                ));
                None
            }
        }
    };
    let single = |n: &IpNet| n.prefix_len() == n.max_prefix_len();
    let cluster: Vec<IpNet> = spec
        .service_cluster_ips
        .iter()
        .filter_map(|b| parse("serviceClusterIPs", &b.cidr))
        .collect();
    let external: Vec<IpNet> = spec
        .service_external_ips
        .iter()
        .filter_map(|b| parse("serviceExternalIPs", &b.cidr))
        .collect();
    let load_balancer: Vec<IpNet> = spec
        .service_load_balancer_ips
        .iter()
        .filter_map(|b| parse("serviceLoadBalancerIPs", &b.cidr))
        .collect();
    let aggregate = spec
        .service_load_balancer_aggregation
        .as_deref()
        .is_none_or(|a| a.eq_ignore_ascii_case("enabled"));

    let mut global_routes: Vec<IpNet> = cluster;
    global_routes.extend(external.iter().filter(|n| !single(n)));
    if aggregate {
        global_routes.extend(load_balancer.iter().filter(|n| !single(n)));
    }
    global_routes.sort();
    global_routes.dedup();
    let excluded = node_labels.contains_key(EXCLUDE_LABEL);
    for n in global_routes {
        if excluded {
            continue;
        }
        let fam = match n {
            IpNet::V4(_) => &mut out.v4,
            IpNet::V6(_) => &mut out.v6,
        };
        fam.advertised.push(n);
        fam.kernel_rejected.push(n);
    }
    if route_reflector {
        for n in external.iter().chain(&load_balancer) {
            let fam = match n {
                IpNet::V4(_) => &mut out.v4,
                IpNet::V6(_) => &mut out.v6,
            };
            if !fam.route_reflector_accepted.contains(n) {
                fam.route_reflector_accepted.push(*n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(name: &str, extra: serde_json::Value) -> BGPConfiguration {
        let mut spec = json!({
            "serviceClusterIPs": [{"cidr": "10.96.0.0/12"}, {"cidr": "fd00:96::/112"}],
            "serviceExternalIPs": [{"cidr": "192.0.2.0/24"}, {"cidr": "192.0.2.77/32"}],
            "serviceLoadBalancerIPs": [{"cidr": "198.51.100.0/24"}],
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": spec,
        }))
        .unwrap()
    }

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn ranges_are_advertised_and_kept_out_of_the_kernel() {
        let s = services(&[config("default", json!({}))], &BTreeMap::new(), false);
        assert_eq!(
            s.v4.advertised,
            nets(&["10.96.0.0/12", "192.0.2.0/24", "198.51.100.0/24"])
        );
        assert_eq!(s.v4.kernel_rejected, s.v4.advertised);
        assert_eq!(s.v6.advertised, nets(&["fd00:96::/112"]));
        assert!(s.v4.route_reflector_accepted.is_empty());
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn aggregation_off_exclusion_label_and_route_reflectors() {
        let off = config(
            "default",
            json!({"serviceLoadBalancerAggregation": "Disabled"}),
        );
        let s = services(&[off], &BTreeMap::new(), true);
        assert_eq!(s.v4.advertised, nets(&["10.96.0.0/12", "192.0.2.0/24"]));
        assert_eq!(
            s.v4.route_reflector_accepted,
            nets(&["192.0.2.0/24", "192.0.2.77/32", "198.51.100.0/24"])
        );
        let labels = BTreeMap::from([(EXCLUDE_LABEL.to_string(), String::new())]);
        let s = services(&[config("default", json!({}))], &labels, false);
        assert!(s.v4.advertised.is_empty() && s.v6.advertised.is_empty());
        // Only the global configuration counts.
        assert_eq!(
            services(&[config("node.node1", json!({}))], &BTreeMap::new(), false),
            Services::default()
        );
    }
}
