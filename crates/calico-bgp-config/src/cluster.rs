//! The cluster's resources, indexed the way confd's cache sees them (the v1 `/calico/bgp/v1/…`
//! keys synthesised by libcalico-go's `bgpnodeprocessor` / `configurationprocessor`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;

use calico_api::bgpconfig::BGPConfiguration;
use calico_api::bgpfilter::BGPFilter;
use calico_api::bgppeer::BGPPeer;
use calico_api::ippool::IPPool;
use calico_api::netutil::parse_cidr_or_ip;
use calico_api::node::Node;
use ipnet::IpNet;

use crate::types::{CommunityRule, CommunityValue, DebugMode, IpFamily, PlanError};

/// The typed resources a plan is computed from.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterInput<'a> {
    pub nodes: &'a [Node],
    /// `default` and `node.<name>` resources (other names are ignored, as confd warns and does).
    pub bgp_configurations: &'a [BGPConfiguration],
    pub bgp_peers: &'a [BGPPeer],
    pub ip_pools: &'a [IPPool],
    pub bgp_filters: &'a [BGPFilter],
}

const DEFAULT_AS: u32 = 64512;
const DEFAULT_NORMAL_ROUTE_PRIORITY: i64 = 1024;

/// A node as confd's `/calico/bgp/v1/host/<node>/…` keys describe it.
#[derive(Debug, Clone)]
pub(crate) struct NodeInfo<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub network_v4: Option<IpNet>,
    pub network_v6: Option<IpNet>,
    pub as_number: Option<u32>,
    /// Empty when the node is not a route reflector.
    pub rr_cluster_id: &'a str,
    pub wireguard_v4: bool,
    pub wireguard_v6: bool,
}

impl NodeInfo<'_> {
    pub fn address(&self, family: IpFamily) -> Option<IpAddr> {
        match family {
            IpFamily::V4 => self.ipv4,
            IpFamily::V6 => self.ipv6,
        }
    }
}

pub(crate) struct Index<'a> {
    /// Sorted by name (Calico's node label manager lists nodes in name order).
    pub nodes: Vec<NodeInfo<'a>>,
    pub global: Option<&'a BGPConfiguration>,
    pub per_node: BTreeMap<&'a str, &'a BGPConfiguration>,
    pub global_as: u32,
    pub mesh_enabled: bool,
    pub bind_node_ip: bool,
    pub global_listen_port: Option<u16>,
    pub ignored_interfaces: Vec<String>,
    /// Sorted by name: confd keeps BGPPeers in a map, we need a stable order.
    pub peers: Vec<&'a BGPPeer>,
    pub pools: &'a [IPPool],
    pub filters: BTreeMap<&'a str, &'a BGPFilter>,
    /// Nodes whose BGP address does not parse: the node is kept without that address (confd's
    /// syncer drops the bad value); an error only when it is the node being planned.
    pub bad_addresses: Vec<PlanError>,
    /// What confd would log and skip (bad peer addresses, selectors, …), de-duplicated.
    warnings: RefCell<Vec<String>>,
}

fn parse_addr(
    node: &str,
    field: &'static str,
    value: &str,
) -> Result<(Option<IpAddr>, Option<IpNet>), PlanError> {
    if value.is_empty() {
        return Ok((None, None));
    }
    let parsed = parse_cidr_or_ip(value).ok_or_else(|| PlanError::BadNodeAddress {
        node: node.to_string(),
        field,
        value: value.to_string(),
    })?;
    Ok((Some(parsed.addr), Some(parsed.network())))
}

impl<'a> Index<'a> {
    pub fn build(input: &ClusterInput<'a>) -> Self {
        let mut nodes = Vec::with_capacity(input.nodes.len());
        let mut bad_addresses = Vec::new();
        let mut checked = |node: &str, field: &'static str, value: &str| {
            parse_addr(node, field, value).unwrap_or_else(|e| {
                bad_addresses.push(e);
                (None, None)
            })
        };
        for n in input.nodes {
            let name = n.metadata.name.as_str();
            let (mut ipv4, mut network_v4, mut ipv6, mut network_v6) = (None, None, None, None);
            let (mut as_number, mut rr) = (None, "");
            if let Some(bgp) = &n.spec.bgp {
                (ipv4, network_v4) = checked(name, "spec.bgp.ipv4Address", &bgp.ipv4_address);
                (ipv6, network_v6) = checked(name, "spec.bgp.ipv6Address", &bgp.ipv6_address);
                as_number = bgp.as_number.map(|a| a.0);
                rr = bgp.route_reflector_cluster_id.as_str();
            }
            let (wg4, wg6) = match &n.spec.wireguard {
                Some(wg) => (
                    !wg.interface_ipv4_address.is_empty(),
                    !wg.interface_ipv6_address.is_empty(),
                ),
                None => (false, false),
            };
            nodes.push(NodeInfo {
                name,
                labels: &n.metadata.labels,
                ipv4,
                ipv6,
                network_v4,
                network_v6,
                as_number,
                rr_cluster_id: rr,
                wireguard_v4: wg4,
                wireguard_v6: wg6,
            });
        }
        nodes.sort_by(|a, b| a.name.cmp(b.name));

        let mut global = None;
        let mut per_node = BTreeMap::new();
        for c in input.bgp_configurations {
            let name = c.metadata.name.as_str();
            if name == "default" {
                global = Some(c);
            } else if let Some(node) = name.strip_prefix("node.") {
                per_node.insert(node, c);
            }
        }
        let spec = global.map(|g| &g.spec);
        let global_as = spec.and_then(|s| s.as_number).map_or(DEFAULT_AS, |a| a.0);
        let mesh_enabled = spec.is_none_or(|s| s.mesh_enabled());
        let bind_node_ip = spec.and_then(|s| s.bind_mode.as_deref()) == Some("NodeIP");
        let global_listen_port = spec.map(|s| s.listen_port).filter(|p| *p != 0);
        let ignored_interfaces = spec
            .map(|s| s.ignored_interfaces.clone())
            .unwrap_or_default();

        let mut peers: Vec<&BGPPeer> = input.bgp_peers.iter().collect();
        peers.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let filters = input
            .bgp_filters
            .iter()
            .map(|f| (f.metadata.name.as_str(), f))
            .collect();
        Index {
            nodes,
            global,
            per_node,
            global_as,
            mesh_enabled,
            bind_node_ip,
            global_listen_port,
            ignored_interfaces,
            peers,
            pools: input.ip_pools,
            filters,
            bad_addresses,
            warnings: RefCell::new(Vec::new()),
        }
    }

    /// Records a skipped input (once).
    pub fn warn(&self, msg: String) {
        let mut w = self.warnings.borrow_mut();
        if !w.contains(&msg) {
            w.push(msg);
        }
    }

    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.borrow_mut())
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo<'a>> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// `listen_port`: `node.<name>` first, then `default` (confd's `getNodeOrGlobalValue`).
    pub fn listen_port_for(&self, node: &str) -> Option<u16> {
        self.node_listen_port(node).or(self.global_listen_port)
    }

    /// `nodeListenPorts[node]` in client.go.
    pub fn node_listen_port(&self, node: &str) -> Option<u16> {
        self.per_node
            .get(node)
            .map(|c| c.spec.listen_port)
            .filter(|p| *p != 0)
    }

    /// The node's AS, or the global one (`nodeToBGPFields` + `globalAS`).
    pub fn node_as(&self, node: &NodeInfo<'_>) -> u32 {
        node.as_number.unwrap_or(self.global_as)
    }

    pub fn normal_route_priority(&self, family: IpFamily) -> i64 {
        let spec = self.global.map(|g| &g.spec);
        let v = match family {
            IpFamily::V4 => spec.and_then(|s| s.ipv4_normal_route_priority),
            IpFamily::V6 => spec.and_then(|s| s.ipv6_normal_route_priority),
        };
        v.unwrap_or(DEFAULT_NORMAL_ROUTE_PRIORITY)
    }

    /// `loglevel`: node-specific, then global; debug/info are kept, anything else is none.
    pub fn debug_mode(&self, node: &str) -> DebugMode {
        let level = |c: &BGPConfiguration| {
            let l = c.spec.log_severity_screen.to_ascii_lowercase();
            if l.is_empty() { None } else { Some(l) }
        };
        let l = self
            .per_node
            .get(node)
            .and_then(|c| level(c))
            .or_else(|| self.global.and_then(level));
        match l.as_deref() {
            Some("debug") => DebugMode::All,
            Some("info") | None => DebugMode::Default,
            Some(_) => DebugMode::None,
        }
    }

    /// `prefixAdvertisements` of `node.<name>` if it has any, else of `default`. Names are
    /// resolved through the same resource's `communities`; values are de-duplicated and sorted
    /// (client.go `getPrefixAdvertisementsKVPair`). Rules without communities are dropped.
    pub fn communities(&self, node: &str, family: IpFamily) -> Vec<CommunityRule> {
        let src = self
            .per_node
            .get(node)
            .copied()
            .filter(|c| !c.spec.prefix_advertisements.is_empty())
            .or(self
                .global
                .filter(|c| !c.spec.prefix_advertisements.is_empty()));
        let Some(src) = src else { return Vec::new() };
        let mut out = Vec::new();
        for adv in &src.spec.prefix_advertisements {
            if adv.cidr.is_empty() || adv.cidr.contains(':') != (family == IpFamily::V6) {
                continue;
            }
            let mut values: Vec<&str> = Vec::new();
            for c in &adv.communities {
                let v = if calico_api::bgpconfig::is_community_shaped(c) {
                    Some(c.as_str())
                } else {
                    src.spec
                        .communities
                        .iter()
                        .find(|d| &d.name == c)
                        .map(|d| d.value.as_str())
                };
                if let Some(v) = v
                    && !values.contains(&v)
                {
                    values.push(v);
                }
            }
            values.sort_unstable();
            let communities: Vec<CommunityValue> =
                values.iter().filter_map(|v| parse_community(v)).collect();
            if !communities.is_empty() {
                out.push(CommunityRule {
                    cidr: adv.cidr.clone(),
                    communities,
                });
            }
        }
        out
    }

    /// Remote WireGuard nodes' BGP addresses, when this node runs WireGuard itself
    /// (`processWireguardPeerFilter`): their routes go through Felix's WireGuard device.
    pub fn wireguard_next_hops(&self, node: &str, family: IpFamily) -> Vec<IpAddr> {
        let has_wg = |n: &NodeInfo<'_>| match family {
            IpFamily::V4 => n.wireguard_v4,
            IpFamily::V6 => n.wireguard_v6,
        };
        if !self.node(node).is_some_and(has_wg) {
            return Vec::new();
        }
        let mut out: Vec<IpAddr> = self
            .nodes
            .iter()
            .filter(|n| n.name != node && has_wg(n))
            .filter_map(|n| n.address(family))
            .collect();
        out.sort_by_key(|a| a.to_string());
        out
    }
}

fn parse_community(v: &str) -> Option<CommunityValue> {
    let parts: Vec<u32> = v
        .split(':')
        .map(|p| p.parse::<u32>())
        .collect::<Result<_, _>>()
        .ok()?;
    match parts[..] {
        [a, b] => Some(CommunityValue::Standard(a, b)),
        [a, b, c] => Some(CommunityValue::Large(a, b, c)),
        _ => None,
    }
}
