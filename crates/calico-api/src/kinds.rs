//! The table of kinds: name, etcd plural, scope and the names calicoctl accepts for each
//! (`calicoctl/calicoctl/resourcemgr/*.go` `registerResource`, `libcalico-go/lib/backend/model/resource.go`).

/// Static facts about one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// The `kind:` value, e.g. `GlobalNetworkPolicy`.
    pub kind: &'static str,
    /// The `<Kind>List` kind calicoctl accepts and prints for several objects.
    pub list_kind: &'static str,
    /// The plural used as the etcd path segment
    /// (`/calico/resources/v3/projectcalico.org/<plural>/...`).
    pub plural: &'static str,
    /// Namespaced kinds live under `<plural>/<namespace>/<name>`.
    pub namespaced: bool,
    /// Every name calicoctl accepts on the command line (lower case): singular, plural, aliases.
    pub names: &'static [&'static str],
}

macro_rules! kinds_table {
    ($( $kind:literal, $plural:literal, $ns:literal, [$($name:literal),* $(,)?] );* $(;)?) => {
        static KINDS: &[KindInfo] = &[
            $( KindInfo {
                kind: $kind,
                list_kind: concat!($kind, "List"),
                plural: $plural,
                namespaced: $ns,
                names: &[$($name),*],
            } ),*
        ];
    };
}

kinds_table! {
    "BGPConfiguration", "bgpconfigurations", false,
        ["bgpconfiguration", "bgpconfigurations", "bgpconfig", "bgpconfigs"];
    "BGPFilter", "bgpfilters", false,
        ["bgpfilter", "bgpfilters", "bgpf", "bgpfs", "bf", "bfs"];
    "BGPPeer", "bgppeers", false,
        ["bgppeer", "bgppeers", "bgpp", "bgpps", "bp", "bps"];
    "CalicoNodeStatus", "caliconodestatuses", false,
        ["caliconodestatus", "caliconodestatuses", "nodestatus", "nodestatuses"];
    "ClusterInformation", "clusterinformations", false,
        ["clusterinformation", "clusterinformations", "clusterinfo", "clusterinfos"];
    "FelixConfiguration", "felixconfigurations", false,
        ["felixconfiguration", "felixconfigurations", "felixconfig", "felixconfigs"];
    "GlobalNetworkPolicy", "globalnetworkpolicies", false,
        ["globalnetworkpolicy", "globalnetworkpolicies", "gnp", "gnps"];
    "GlobalNetworkSet", "globalnetworksets", false,
        ["globalnetworkset", "globalnetworksets", "gnetsets"];
    "HostEndpoint", "hostendpoints", false,
        ["hostendpoint", "hostendpoints", "hep", "heps"];
    "IPAMConfiguration", "ipamconfigurations", false,
        ["ipamconfiguration", "ipamconfigurations", "ipamconfig", "ipamconfigs"];
    "IPPool", "ippools", false,
        ["ippool", "ippools", "ipp", "ipps", "pool", "pools"];
    "IPReservation", "ipreservations", false,
        ["ipreservation", "ipreservations", "reservation", "reservations"];
    "KubeControllersConfiguration", "kubecontrollersconfigurations", false,
        ["kubecontrollersconfiguration", "kubecontrollersconfigurations",
         "kubecontrollersconfig", "kubecontrollersconfigs"];
    "NetworkPolicy", "networkpolicies", true,
        ["networkpolicy", "networkpolicies", "policy", "np", "policies", "pol", "pols"];
    "NetworkSet", "networksets", true,
        ["networkset", "networksets", "netsets"];
    "Node", "nodes", false,
        ["node", "nodes", "no", "nos"];
    "Profile", "profiles", false,
        ["profile", "profiles", "pro", "pros"];
    "StagedGlobalNetworkPolicy", "stagedglobalnetworkpolicies", false,
        ["stagedglobalnetworkpolicy", "stagedglobalnetworkpolicies", "sgnp", "sgnps"];
    "StagedKubernetesNetworkPolicy", "stagedkubernetesnetworkpolicies", true,
        ["stagedkubernetesnetworkpolicy", "stagedkubernetesnetworkpolicies",
         "stagedkubernetespolicy", "sknp", "stagedkubernetespolicies", "skpol", "skpols"];
    "StagedNetworkPolicy", "stagednetworkpolicies", true,
        ["stagednetworkpolicy", "stagednetworkpolicies", "stagedpolicy", "snp",
         "stagedpolicies", "spol", "spols"];
    "Tier", "tiers", false,
        ["tier", "tiers"];
    "WorkloadEndpoint", "workloadendpoints", true,
        ["workloadendpoint", "workloadendpoints", "wep", "weps"];
}

/// Every kind, in alphabetical order.
pub fn all_kinds() -> &'static [KindInfo] {
    KINDS
}

/// The kind with exactly this `kind:` name (e.g. `IPPool`).
pub fn kind_info(kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// The kind a calicoctl user means by `name` (case-insensitive: `gnp`, `GlobalNetworkPolicy`,
/// `ippools`, ...).
pub fn lookup_kind(name: &str) -> Option<&'static KindInfo> {
    let lower = name.to_ascii_lowercase();
    KINDS.iter().find(|k| k.names.contains(&lower.as_str()))
}

/// The kind whose list kind is `list_kind` (e.g. `IPPoolList`).
pub fn kind_for_list(list_kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.list_kind == list_kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve() {
        assert_eq!(
            lookup_kind("gnp").map(|k| k.kind),
            Some("GlobalNetworkPolicy")
        );
        assert_eq!(lookup_kind("IPPool").map(|k| k.kind), Some("IPPool"));
        assert_eq!(lookup_kind("pools").map(|k| k.kind), Some("IPPool"));
        assert_eq!(
            lookup_kind("pol").map(|k| k.plural),
            Some("networkpolicies")
        );
        assert!(lookup_kind("nosuchkind").is_none());
        assert_eq!(kind_for_list("TierList").map(|k| k.kind), Some("Tier"));
    }

    #[test]
    fn names_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for k in all_kinds() {
            for n in k.names {
                assert_eq!(*n, n.to_ascii_lowercase());
                assert!(seen.insert(*n), "duplicate name {n}");
            }
            assert!(k.names.contains(&k.kind.to_ascii_lowercase().as_str()));
        }
    }
}
