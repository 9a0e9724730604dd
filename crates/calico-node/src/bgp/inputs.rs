//! What the BGP agent reads from the datastore: the resources confd watches (Nodes,
//! BGPConfigurations, BGPPeers, IPPools, BGPFilters), this node's block affinities
//! (`/calico/ipam/v2/host/<node>/ipv{4,6}/block/…`) and this node's workload endpoints (for
//! borrowed addresses, which are advertised as /32 or /128 routes).

use std::collections::BTreeMap;
use std::path::PathBuf;

use calico_api::bgpconfig::BGPConfiguration;
use calico_api::bgpfilter::BGPFilter;
use calico_api::bgppeer::BGPPeer;
use calico_api::ippool::IPPool;
use calico_api::node::Node;
use calico_api::workloadendpoint::WorkloadEndpoint;
use calico_bgp_config::{AffineBlock, BlockState, PasswordResolver};
use calico_client::Client;
use calico_datastore::Revision;
use calico_ipam::model::{
    AffinityOwner, AffinityState, BlockAffinity, affinity_prefix, cidr_from_key,
};
use ipnet::IpNet;

use super::BgpError;

/// One consistent read of everything the plan depends on.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: Vec<Node>,
    pub bgp_configurations: Vec<BGPConfiguration>,
    pub bgp_peers: Vec<BGPPeer>,
    pub ip_pools: Vec<IPPool>,
    pub bgp_filters: Vec<BGPFilter>,
    pub affine_blocks: Vec<AffineBlock>,
    /// Addresses of this node's workloads (`ipNetworks`).
    pub workload_addresses: Vec<IpNet>,
    /// The highest revision read; a watch starts after it.
    pub revision: Revision,
}

/// Reads the snapshot for `node`.
pub async fn load(client: &Client, node: &str) -> Result<Snapshot, BgpError> {
    let read = |what: &'static str| {
        move |e: calico_client::ClientError| BgpError::Read {
            what,
            reason: e.to_string(),
        }
    };
    let (nodes, r1) = client.list_as::<Node>(None).await.map_err(read("nodes"))?;
    let (bgp_configurations, r2) = client
        .list_as::<BGPConfiguration>(None)
        .await
        .map_err(read("BGP configurations"))?;
    let (bgp_peers, r3) = client
        .list_as::<BGPPeer>(None)
        .await
        .map_err(read("BGP peers"))?;
    let (ip_pools, r4) = client
        .list_as::<IPPool>(None)
        .await
        .map_err(read("IP pools"))?;
    let (bgp_filters, r5) = client
        .list_as::<BGPFilter>(None)
        .await
        .map_err(read("BGP filters"))?;
    let (weps, r6) = client
        .list_as::<WorkloadEndpoint>(None)
        .await
        .map_err(read("workload endpoints"))?;
    let mut revision = r1.max(r2).max(r3).max(r4).max(r5).max(r6);

    let owner = AffinityOwner::host(node);
    let mut affine_blocks = Vec::new();
    for version in [4u8, 6] {
        let prefix = affinity_prefix(&owner, version);
        let resp = client
            .datastore()
            .list(&prefix)
            .await
            .map_err(|e| BgpError::Read {
                what: "block affinities",
                reason: e.to_string(),
            })?;
        revision = revision.max(resp.revision);
        for kv in resp.kvs {
            match decode_affinity(&kv.key, &kv.value) {
                Ok(Some(b)) => affine_blocks.push(b),
                Ok(None) => {}
                // One bad record must not take BGP down; confd logs and skips it too.
                Err(reason) => tracing::warn!(key = %kv.key, %reason, "skipping a block affinity"),
            }
        }
    }

    let mut workload_addresses = Vec::new();
    for wep in weps.iter().filter(|w| w.spec.node == node) {
        for n in &wep.spec.ip_networks {
            match parse_net(n) {
                Some(net) => workload_addresses.push(net),
                None => {
                    tracing::warn!(endpoint = %wep.metadata.name, network = %n, "skipping a bad workload address")
                }
            }
        }
    }

    Ok(Snapshot {
        nodes,
        bgp_configurations,
        bgp_peers,
        ip_pools,
        bgp_filters,
        affine_blocks,
        workload_addresses,
        revision,
    })
}

/// An affinity key/value as an [`AffineBlock`]; `None` for affinities being deleted.
pub fn decode_affinity(key: &str, value: &[u8]) -> Result<Option<AffineBlock>, String> {
    let cidr = cidr_from_key(key).map_err(|e| e.to_string())?;
    let affinity = BlockAffinity::decode(key, value).map_err(|e| e.to_string())?;
    if affinity.deleted {
        return Ok(None);
    }
    let state = match affinity.state {
        AffinityState::Legacy => BlockState::Implicit,
        AffinityState::Confirmed => BlockState::Confirmed,
        AffinityState::Pending => BlockState::Pending,
        AffinityState::PendingDeletion => return Ok(None),
    };
    Ok(Some(AffineBlock { cidr, state }))
}

/// `10.65.0.3/32`, or a bare address as a host route.
fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
        .map(|n| n.trunc())
}

/// Passwords from `secretKeyRef`s. Calico reads Kubernetes Secrets; without Kubernetes,
/// calico-node reads them the way a Secret mounted as a volume appears:
/// `<dir>/<secret name>/<key>` (`CALICO_BGP_SECRETS_DIR`, default
/// `/etc/calico/bgp-secrets`). A missing file is "unreadable", which confd answers by
/// configuring the session without a password; we log it.
#[derive(Debug, Clone)]
pub struct SecretFiles {
    pub dir: PathBuf,
}

impl PasswordResolver for SecretFiles {
    fn resolve(&self, secret_name: &str, key: &str) -> Option<String> {
        // Names are Kubernetes object names and keys; refuse anything that walks the tree.
        let safe = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
        if !safe(secret_name) || !safe(key) {
            tracing::warn!(secret = %secret_name, %key, "refusing a secret reference with a path in it");
            return None;
        }
        let path = self.dir.join(secret_name).join(key);
        match std::fs::read_to_string(&path) {
            Ok(v) => Some(v.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "BGP password secret unreadable; session configured without a password");
                None
            }
        }
    }
}

/// Sorted, de-duplicated map of what [`Snapshot`] holds per kind (for logging changes).
pub fn summary(s: &Snapshot) -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("nodes", s.nodes.len()),
        ("bgpconfigurations", s.bgp_configurations.len()),
        ("bgppeers", s.bgp_peers.len()),
        ("ippools", s.ip_pools.len()),
        ("bgpfilters", s.bgp_filters.len()),
        ("affine blocks", s.affine_blocks.len()),
        ("workload addresses", s.workload_addresses.len()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinities_decode_like_confd() {
        let k = "/calico/ipam/v2/host/n1/ipv4/block/10.65.0.0-26";
        let b = decode_affinity(k, br#"{"state":"confirmed","deleted":false}"#).unwrap();
        assert_eq!(
            b,
            Some(AffineBlock {
                cidr: "10.65.0.0/26".parse().unwrap(),
                state: BlockState::Confirmed
            })
        );
        assert_eq!(
            decode_affinity(k, b"").unwrap().unwrap().state,
            BlockState::Implicit
        );
        assert_eq!(
            decode_affinity(k, br#"{"state":"pending"}"#)
                .unwrap()
                .unwrap()
                .state,
            BlockState::Pending
        );
        assert_eq!(
            decode_affinity(k, br#"{"state":"pendingDeletion"}"#).unwrap(),
            None
        );
        assert_eq!(
            decode_affinity(k, br#"{"state":"confirmed","deleted":true}"#).unwrap(),
            None
        );
        assert!(decode_affinity("/calico/ipam/v2/host/n1/ipv4/block/nonsense", b"").is_err());
        assert!(decode_affinity(k, b"{not json").is_err());
    }

    #[test]
    fn secrets_are_read_from_files_and_paths_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bgp-secrets")).unwrap();
        std::fs::write(dir.path().join("bgp-secrets/rr-password"), "s3cret\n").unwrap();
        let r = SecretFiles {
            dir: dir.path().to_path_buf(),
        };
        assert_eq!(
            r.resolve("bgp-secrets", "rr-password").as_deref(),
            Some("s3cret")
        );
        assert_eq!(r.resolve("bgp-secrets", "missing"), None);
        assert_eq!(r.resolve("..", "etc"), None);
        assert_eq!(r.resolve("bgp-secrets", "../bgp-secrets/rr-password"), None);
    }

    #[test]
    fn workload_networks_parse() {
        assert_eq!(
            parse_net("10.65.0.3/32"),
            Some("10.65.0.3/32".parse().unwrap())
        );
        assert_eq!(
            parse_net("10.65.0.3"),
            Some("10.65.0.3/32".parse().unwrap())
        );
        assert_eq!(
            parse_net("fd00::3/128"),
            Some("fd00::3/128".parse().unwrap())
        );
        assert_eq!(parse_net("bogus"), None);
    }
}
