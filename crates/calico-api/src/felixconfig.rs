//! FelixConfiguration (`api/pkg/apis/projectcalico/v3/felixconfig.go`): Felix's settings, as
//! the global `default` object, per-node `node.<nodename>` objects, or objects applying to the
//! nodes a `nodeSelector` picks.
//!
//! Every one of the 188 fields is kept optional and omitted when unset, exactly as Calico's Go
//! types print them (`bpfLogLevel` is the one field without `omitempty` and is always written).
//! Durations are Go duration strings stored in Go's canonical form (`90s` is stored as
//! `1m30s`). Defaulting mirrors `setDefaults` in `libcalico-go/lib/clientv3/felixconfig.go` plus
//! the CRD defaults (`nftablesMode: Auto`, `nftablesFlowTableOffload: Disabled`); validation
//! lives in [`crate::felixconfig_validate`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::numorstring::{Dscp, Port};
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FelixConfiguration {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: FelixConfigurationSpec,
}

/// All fields of Calico's `FelixConfigurationSpec`, in Go struct order (which is the JSON key
/// order Calico writes). The `[Default: ...]` notes are Calico's documented defaults, applied by
/// Felix itself, not written into the object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct FelixConfigurationSpec {
    /// NodeSelector is an optional label selector that restricts this FelixConfiguration to apply only to nodes that match the given selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<String>,
    /// UseInternalDataplaneDriver, if true, Felix will use its internal dataplane programming logic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_internal_dataplane_driver: Option<bool>,
    /// DataplaneDriver filename of the external dataplane driver to use.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dataplane_driver: String,
    /// DataplaneWatchdogTimeout is the readiness/liveness timeout used for Felix's (internal) dataplane driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataplane_watchdog_timeout: Option<Duration>,
    /// IPv6Support controls whether Felix enables support for IPv6 (if supported by the in-use dataplane).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_support: Option<bool>,
    /// RouteRefreshInterval is the period at which Felix re-checks the routes in the dataplane to ensure that no other process has accidentally broken Calico's rules.
    /// [Default: 90s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_refresh_interval: Option<Duration>,
    /// InterfaceRefreshInterval is the period at which Felix rescans local interfaces to verify their state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_refresh_interval: Option<Duration>,
    /// IptablesRefreshInterval is the period at which Felix re-checks the IP sets in the dataplane to ensure that no other process has accidentally broken Calico's rules.
    /// [Default: 10s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_refresh_interval: Option<Duration>,
    /// IptablesPostWriteCheckInterval is the period after Felix has done a write to the dataplane that it schedules an extra read back in order to check the write was not ...
    /// [Default: 1s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_post_write_check_interval: Option<Duration>,
    /// IptablesLockProbeInterval configures the interval between attempts to claim the xtables lock.
    /// [Default: 50ms]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_lock_probe_interval: Option<Duration>,
    /// FeatureDetectOverride is used to override feature detection based on auto-detected platform capabilities.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub feature_detect_override: String,
    /// FeatureGates is used to enable or disable tech-preview Calico features.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub feature_gates: String,
    /// IpsetsRefreshInterval controls the period at which Felix re-checks all IP sets to look for discrepancies.
    /// [Default: 90s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipsets_refresh_interval: Option<Duration>,
    /// MaxIpsetSize is the maximum number of IP addresses that can be stored in an IP set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ipset_size: Option<i64>,
    /// IptablesBackend controls which backend of iptables will be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_backend: Option<String>,
    /// XDPRefreshInterval is the period at which Felix re-checks all XDP state to ensure that no other process has accidentally broken Calico's BPF maps or attached programs.
    /// [Default: 90s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_refresh_interval: Option<Duration>,
    /// NetlinkTimeout is the timeout when talking to the kernel over the netlink protocol, used for programming routes, rules, and other kernel objects.
    /// [Default: 10s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netlink_timeout: Option<Duration>,
    /// MetadataAddr is the IP address or domain name of the server that can answer VM queries for cloud-init metadata.
    /// [Default: 127.0.0.1]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metadata_addr: String,
    /// MetadataPort is the port of the metadata server.
    /// [Default: 8775]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_port: Option<i64>,
    /// OpenstackRegion is the name of the region that a particular Felix belongs to.
    /// [Default: Empty]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub openstack_region: String,
    /// InterfacePrefix is the interface name prefix that identifies workload endpoints and so distinguishes them from host endpoint interfaces.
    /// [Default: cali]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub interface_prefix: String,
    /// InterfaceExclude A comma-separated list of interface names that should be excluded when Felix is resolving host endpoints.
    /// [Default: kube-ipvs0]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub interface_exclude: String,
    /// ChainInsertMode controls whether Felix hooks the kernel's top-level iptables chains by inserting a rule at the top of the chain or by appending a rule at the bottom.
    /// [Default: insert]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub chain_insert_mode: String,
    /// DefaultEndpointToHostAction controls what happens to traffic that goes from a workload endpoint to the host itself (after the endpoint's egress policy is applied).
    /// [Default: Drop]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_endpoint_to_host_action: String,
    /// IptablesFilterAllowAction controls what happens to traffic that is accepted by a Felix policy chain in the iptables filter table (which is used for "normal" policy).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub iptables_filter_allow_action: String,
    /// IptablesMangleAllowAction controls what happens to traffic that is accepted by a Felix policy chain in the iptables mangle table (which is used for "pre-DNAT" policy).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub iptables_mangle_allow_action: String,
    /// IptablesFilterDenyAction controls what happens to traffic that is denied by network policy.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub iptables_filter_deny_action: String,
    /// LogPrefix is the log prefix that Felix uses when rendering LOG rules.
    /// [Default: calico-packet]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub log_prefix: String,
    /// LogActionRateLimit sets the rate of hitting a Log action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_action_rate_limit: Option<String>,
    /// LogActionRateLimitBurst sets the rate limit burst of hitting a Log action when LogActionRateLimit is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_action_rate_limit_burst: Option<i64>,
    /// LogFilePath is the full path to the Felix log.
    /// [Default: /var/log/calico/felix.log]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub log_file_path: String,
    /// LogSeverityFile is the log severity above which logs are sent to the log file.
    /// [Default: Info]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub log_severity_file: String,
    /// LogSeverityScreen is the log severity above which logs are sent to the stdout.
    /// [Default: Info]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub log_severity_screen: String,
    /// LogSeveritySys is the log severity above which logs are sent to the syslog.
    /// [Default: Info]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub log_severity_sys: String,
    /// LogDebugFilenameRegex controls which source code files have their Debug log output included in the logs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub log_debug_filename_regex: String,
    /// IPIPEnabled overrides whether Felix should configure an IPIP interface on the host.
    /// [Default: nil (unset)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipip_enabled: Option<bool>,
    /// IPIPMTU controls the MTU to set on the IPIP tunnel device.
    /// [Default: 0 (auto-detect)]
    #[serde(rename = "ipipMTU", skip_serializing_if = "Option::is_none")]
    pub ipip_mtu: Option<i64>,
    /// VXLANEnabled overrides whether Felix should create the VXLAN tunnel device for IPv4 VXLAN networking.
    /// [Default: nil (unset)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan_enabled: Option<bool>,
    /// VXLANMTU is the MTU to set on the IPv4 VXLAN tunnel device.
    /// [Default: 0 (auto-detect)]
    #[serde(rename = "vxlanMTU", skip_serializing_if = "Option::is_none")]
    pub vxlan_mtu: Option<i64>,
    /// VXLANMTUV6 is the MTU to set on the IPv6 VXLAN tunnel device.
    /// [Default: 0 (auto-detect)]
    #[serde(rename = "vxlanMTUV6", skip_serializing_if = "Option::is_none")]
    pub vxlan_mtu_v6: Option<i64>,
    /// VXLANPort is the UDP port number to use for VXLAN traffic.
    /// [Default: 4789]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vxlan_port: Option<i64>,
    /// VXLANVNI is the VXLAN VNI to use for VXLAN traffic.
    /// [Default: 4096]
    #[serde(rename = "vxlanVNI", skip_serializing_if = "Option::is_none")]
    pub vxlan_vni: Option<i64>,
    /// AllowVXLANPacketsFromWorkloads controls whether Felix will add a rule to drop VXLAN encapsulated traffic from workloads.
    /// [Default: false]
    #[serde(
        rename = "allowVXLANPacketsFromWorkloads",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_vxlan_packets_from_workloads: Option<bool>,
    /// AllowIPIPPacketsFromWorkloads controls whether Felix will add a rule to drop IPIP encapsulated traffic from workloads.
    /// [Default: false]
    #[serde(
        rename = "allowIPIPPacketsFromWorkloads",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_ipip_packets_from_workloads: Option<bool>,
    /// ReportingInterval is the interval at which Felix reports its status into the datastore or 0 to disable.
    /// [Default: 30s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporting_interval: Option<Duration>,
    /// ReportingTTL is the time-to-live setting for process-wide status reports.
    /// [Default: 90s]
    #[serde(rename = "reportingTTL", skip_serializing_if = "Option::is_none")]
    pub reporting_ttl: Option<Duration>,
    /// EndpointReportingEnabled controls whether Felix reports endpoint status to the datastore.
    /// [Default: false]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_reporting_enabled: Option<bool>,
    /// EndpointReportingDelay is the delay before Felix reports endpoint status to the datastore.
    /// [Default: 1s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_reporting_delay: Option<Duration>,
    /// EndpointStatusPathPrefix is the path to the directory where endpoint status will be written.
    /// [Default: /var/run/calico]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub endpoint_status_path_prefix: String,
    /// IptablesMarkMask is the mask that Felix selects its IPTables Mark bits from.
    /// [Default: 0xffff0000]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iptables_mark_mask: Option<i64>,
    /// DisableConntrackInvalidCheck disables the check for invalid connections in conntrack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_conntrack_invalid_check: Option<bool>,
    /// HealthEnabled if set to true, enables Felix's health port, which provides readiness and liveness endpoints.
    /// [Default: false]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_enabled: Option<bool>,
    /// HealthHost is the host that the health server should bind to.
    /// [Default: localhost]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_host: Option<String>,
    /// HealthPort is the TCP port that the health server should bind to.
    /// [Default: 9099]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_port: Option<i64>,
    /// HealthTimeoutOverrides allows the internal watchdog timeouts of individual subcomponents to be overridden.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub health_timeout_overrides: Vec<HealthTimeoutOverride>,
    /// PrometheusMetricsEnabled enables the Prometheus metrics server in Felix if set to true.
    /// [Default: false]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_enabled: Option<bool>,
    /// PrometheusMetricsHost is the host that the Prometheus metrics server should bind to.
    /// [Default: empty]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub prometheus_metrics_host: String,
    /// PrometheusMetricsPort is the TCP port that the Prometheus metrics server should bind to.
    /// [Default: 9091]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_port: Option<i64>,
    /// PrometheusGoMetricsEnabled disables Go runtime metrics collection, which the Prometheus client does by default, when set to false.
    /// [Default: true]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_go_metrics_enabled: Option<bool>,
    /// PrometheusProcessMetricsEnabled disables process metrics collection, which the Prometheus client does by default, when set to false.
    /// [Default: true]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_process_metrics_enabled: Option<bool>,
    /// PrometheusWireGuardMetricsEnabled disables wireguard metrics collection, which the Prometheus client does by default, when set to false.
    /// [Default: true]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_wire_guard_metrics_enabled: Option<bool>,
    /// PrometheusMetricsCAFile defines the absolute path to the TLS CA certificate file used for securing the /metrics endpoint.
    #[serde(
        rename = "prometheusMetricsCAFile",
        skip_serializing_if = "Option::is_none"
    )]
    pub prometheus_metrics_ca_file: Option<String>,
    /// PrometheusMetricsCertFile defines the absolute path to the TLS certificate file used for securing the /metrics endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_cert_file: Option<String>,
    /// PrometheusMetricsKeyFile defines the absolute path to the private key file corresponding to the TLS certificate used for securing the /metrics endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_key_file: Option<String>,
    /// PrometheusMetricsClientAuth specifies the client authentication type for the /metrics endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_client_auth: Option<String>,
    /// FailsafeInboundHostPorts is a list of ProtoPort struct objects including UDP/TCP/SCTP ports and CIDRs that Felix will allow incoming traffic to host endpoints on ...
    /// [Default: tcp:22, udp:68, tcp:179, tcp:2379, tcp:2380, tcp:5473, tcp:6443, tcp:6666, tcp:6667 ]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failsafe_inbound_host_ports: Option<Vec<ProtoPort>>,
    /// FailsafeOutboundHostPorts is a list of PortProto struct objects including UDP/TCP/SCTP ports and CIDRs that Felix will allow outgoing traffic from host endpoints to ...
    /// [Default: udp:53, udp:67, tcp:179, tcp:2379, tcp:2380, tcp:5473, tcp:6443, tcp:6666, tcp:6667 ]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failsafe_outbound_host_ports: Option<Vec<ProtoPort>>,
    /// KubeNodePortRanges holds list of port ranges used for service node ports.
    /// [Default: 30000:32767]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_node_port_ranges: Option<Vec<Port>>,
    /// PolicySyncPathPrefix is used to by Felix to communicate policy changes to external services, like Application layer policy.
    /// [Default: Empty]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub policy_sync_path_prefix: String,
    /// UsageReportingEnabled reports anonymous Calico version number and cluster size to projectcalico.org.
    /// [Default: true]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_reporting_enabled: Option<bool>,
    /// UsageReportingInitialDelay controls the minimum delay before Felix makes a report.
    /// [Default: 300s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_reporting_initial_delay: Option<Duration>,
    /// UsageReportingInterval controls the interval at which Felix makes reports.
    /// [Default: 86400s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_reporting_interval: Option<Duration>,
    /// NATPortRange specifies the range of ports that is used for port mapping when doing outgoing NAT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_port_range: Option<Port>,
    /// NATOutgoingAddress specifies an address to use when performing source NAT for traffic in a natOutgoing pool that is leaving the network.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nat_outgoing_address: String,
    /// When a IP pool setting `natOutgoing` is true, packets sent from Calico networked containers in this IP pool to destinations will be masqueraded.
    /// [Default: IPPoolsOnly]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_outgoing_exclusions: Option<String>,
    /// DeviceRouteSourceAddress IPv4 address to set as the source hint for routes programmed by Felix.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub device_route_source_address: String,
    /// DeviceRouteSourceAddressIPv6 IPv6 address to set as the source hint for routes programmed by Felix.
    #[serde(
        rename = "deviceRouteSourceAddressIPv6",
        skip_serializing_if = "String::is_empty"
    )]
    pub device_route_source_address_ipv6: String,
    /// DeviceRouteProtocol controls the protocol to set on routes programmed by Felix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_route_protocol: Option<i64>,
    /// RemoveExternalRoutes Controls whether Felix will remove unexpected routes to workload interfaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_external_routes: Option<bool>,
    /// ProgramClusterRoutes controls which "cluster routes" Felix programs, i.e.
    /// [Default: EnabledIPIPOnly]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program_cluster_routes: Option<String>,
    /// IPForwarding controls whether Felix sets the host sysctls to enable IP forwarding.
    /// [Default: Enabled]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip_forwarding: String,
    /// ExternalNodesCIDRList is a list of CIDR's of external, non-Calico nodes from which VXLAN/IPIP overlay traffic will be allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_nodes_list: Option<Vec<String>>,
    /// DebugMemoryProfilePath is the path to write the memory profile to when triggered by signal.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub debug_memory_profile_path: String,
    /// DebugDisableLogDropping disables the dropping of log messages when the log buffer is full.
    /// [Default: false]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_disable_log_dropping: Option<bool>,
    /// DebugSimulateCalcGraphHangAfter is used to simulate a hang in the calculation graph after the specified duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_simulate_calc_graph_hang_after: Option<Duration>,
    /// DebugSimulateDataplaneHangAfter is used to simulate a hang in the dataplane after the specified duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_simulate_dataplane_hang_after: Option<Duration>,
    /// DebugSimulateDataplaneApplyDelay adds an artificial delay to every dataplane operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_simulate_dataplane_apply_delay: Option<Duration>,
    /// DebugHost is the host IP or hostname to bind the debug port to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_host: Option<String>,
    /// DebugPort if set, enables Felix's debug HTTP port, which allows memory and CPU profiles to be retrieved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug_port: Option<i64>,
    /// This parameter can be used to limit the host interfaces on which Calico will apply SNAT to traffic leaving a Calico IPAM pool with "NAT outgoing" enabled.
    #[serde(
        rename = "iptablesNATOutgoingInterfaceFilter",
        skip_serializing_if = "String::is_empty"
    )]
    pub iptables_nat_outgoing_interface_filter: String,
    /// SidecarAccelerationEnabled enables experimental sidecar acceleration [Default: false]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sidecar_acceleration_enabled: Option<bool>,
    /// XDPEnabled enables XDP acceleration for suitable untracked incoming deny rules.
    /// [Default: true]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xdp_enabled: Option<bool>,
    /// GenericXDPEnabled enables Generic XDP so network cards that don't support XDP offload or driver modes can use XDP.
    /// [Default: false]
    #[serde(rename = "genericXDPEnabled", skip_serializing_if = "Option::is_none")]
    pub generic_xdp_enabled: Option<bool>,
    /// NFTablesMode configures nftables support in Felix.
    /// [Default: Auto]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_mode: Option<String>,
    /// NFTablesFlowTableOffload controls which traffic nftables flowtable offload is enabled for, for improved forwarding performance.
    /// [Default: Disabled]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_flow_table_offload: Option<String>,
    /// NFTablesFlowTableDataIfacePattern is a regular expression that controls which host interfaces are added to the nftables flowtable, so that traffic forwarded between ...
    /// [Default: ""]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nftables_flow_table_data_iface_pattern: String,
    /// NftablesRefreshInterval controls the interval at which Felix periodically refreshes the nftables rules.
    /// [Default: 90s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_refresh_interval: Option<Duration>,
    /// NftablesFilterAllowAction controls the nftables action that Felix uses to represent the "allow" policy verdict in the filter table.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nftables_filter_allow_action: String,
    /// NftablesMangleAllowAction controls the nftables action that Felix uses to represent the "allow" policy verdict in the mangle table.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nftables_mangle_allow_action: String,
    /// NftablesFilterDenyAction controls what happens to traffic that is denied by network policy.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nftables_filter_deny_action: String,
    /// NftablesMarkMask is the mask that Felix selects its nftables Mark bits from.
    /// [Default: 0xffff0000]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables_mark_mask: Option<i64>,
    /// BPFEnabled, if enabled Felix will use the BPF dataplane.
    /// [Default: false]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_enabled: Option<bool>,
    /// BPFOverlayHostSourceIP controls the source IP that Felix uses in BPF mode for host-networked (node-originated) traffic egressing over an IPIP/VXLAN overlay tunnel.
    /// [Default: TunnelAddress]
    #[serde(
        rename = "bpfOverlayHostSourceIP",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_overlay_host_source_ip: Option<String>,
    /// BPFDisableUnprivileged, if enabled, Felix sets the kernel.unprivileged_bpf_disabled sysctl to disable unprivileged use of BPF.
    /// [Default: true]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_disable_unprivileged: Option<bool>,
    /// BPFJITHardening controls BPF JIT hardening.
    /// [Default: Auto]
    #[serde(rename = "bpfJITHardening", skip_serializing_if = "Option::is_none")]
    pub bpf_jit_hardening: Option<String>,
    /// BPFLogLevel controls the log level of the BPF programs when in BPF dataplane mode.
    /// [Default: Off]
    pub bpf_log_level: String,
    /// BPFConntrackLogLevel controls the log level of the BPF conntrack cleanup program, which runs periodically to clean up expired BPF conntrack entries.
    /// [Default: Off]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bpf_conntrack_log_level: String,
    /// BPFConntrackCleanupMode controls how BPF conntrack entries are cleaned up.
    /// [Default: Userspace]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_conntrack_mode: Option<String>,
    /// BPFConntrackTimers overrides the default values for the specified conntrack timer if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_conntrack_timeouts: Option<BPFConntrackTimeouts>,
    /// BPFIPFragTimeout, in BPF mode, controls the timeout for IP fragment reassembly.
    /// [Default: unset - read from net.ipv4.ipfrag_time]
    #[serde(rename = "bpfIPFragTimeout", skip_serializing_if = "Option::is_none")]
    pub bpf_ip_frag_timeout: Option<Duration>,
    /// BPFLogFilters is a map of key=values where the value is a pcap filter expression and the key is an interface name with 'all' denoting all interfaces, 'weps' all workload ...
    /// [Default: unset - means all debug logs are emitted]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_log_filters: Option<BTreeMap<String, String>>,
    /// BPFCTLBLogFilter specifies, what is logged by connect time load balancer when BPFLogLevel is debug.
    /// [Default: unset - means logs are emitted when BPFLogLevel id debug and BPFLogFilters not set.]
    #[serde(rename = "bpfCTLBLogFilter", skip_serializing_if = "String::is_empty")]
    pub bpf_ctlb_log_filter: String,
    /// BPFDataIfacePattern is a regular expression that controls which interfaces Felix should attach BPF programs to in order to catch traffic to/from the network.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bpf_data_iface_pattern: String,
    /// BPFL3IfacePattern is a regular expression that allows to list tunnel devices like wireguard or vxlan (i.e., L3 devices) in addition to BPFDataIfacePattern.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bpf_l3_iface_pattern: String,
    /// BPFConnectTimeLoadBalancingEnabled when in BPF mode, controls whether Felix installs the connection-time load balancer.
    /// [Default: true]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_connect_time_load_balancing_enabled: Option<bool>,
    /// BPFConnectTimeLoadBalancing when in BPF mode, controls whether Felix installs the connect-time load balancer.
    /// [Default: TCP]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_connect_time_load_balancing: Option<String>,
    /// BPFHostNetworkedNATWithoutCTLB when in BPF mode, controls whether Felix does a NAT without CTLB.
    /// [Default: Enabled]
    #[serde(
        rename = "bpfHostNetworkedNATWithoutCTLB",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_host_networked_nat_without_ctlb: Option<String>,
    /// BPFExternalServiceMode in BPF mode, controls how connections from outside the cluster to services (node ports and cluster IPs) are forwarded to remote workloads.
    /// [Default: Tunnel]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bpf_external_service_mode: String,
    /// BPFDSROptoutCIDRs is a list of CIDRs which are excluded from DSR.
    #[serde(rename = "bpfDSROptoutCIDRs", skip_serializing_if = "Option::is_none")]
    pub bpf_dsr_optout_cidrs: Option<Vec<String>>,
    /// BPFExtToServiceConnmark in BPF mode, controls a 32bit mark that is set on connections from an external client to a local service.
    /// [Default: 0]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_ext_to_service_connmark: Option<i64>,
    /// BPFKubeProxyIptablesCleanupEnabled, if enabled in BPF mode, Felix will proactively clean up the upstream Kubernetes kube-proxy's iptables chains.
    /// [Default: true]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_kube_proxy_iptables_cleanup_enabled: Option<bool>,
    /// BPFKubeProxyMinSyncPeriod, in BPF mode, controls the minimum time between updates to the dataplane for Felix's embedded kube-proxy.
    /// [Default: 1s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_kube_proxy_min_sync_period: Option<Duration>,
    /// BPFKubeProxyHealthzPort, in BPF mode, controls the port that Felix's embedded kube-proxy health check server binds to.
    /// [Default: 10256]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_kube_proxy_healthz_port: Option<i64>,
    /// BPFPSNATPorts sets the range from which we randomly pick a port if there is a source port collision.
    /// [Default: 20000:29999]
    #[serde(rename = "bpfPSNATPorts", skip_serializing_if = "Option::is_none")]
    pub bpf_psnat_ports: Option<Port>,
    /// BPFMapSizeNATFrontend sets the size for NAT front end map.
    #[serde(
        rename = "bpfMapSizeNATFrontend",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_nat_frontend: Option<i64>,
    /// BPFMapSizeNATBackend sets the size for NAT back end map.
    #[serde(
        rename = "bpfMapSizeNATBackend",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_nat_backend: Option<i64>,
    /// BPFMapSizeNATAffinity sets the size of the BPF map that stores the affinity of a connection (for services that enable that feature.
    #[serde(
        rename = "bpfMapSizeNATAffinity",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_map_size_nat_affinity: Option<i64>,
    /// BPFMapSizeRoute sets the size for the routes map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_route: Option<i64>,
    /// BPFMapSizeConntrack sets the size for the conntrack map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_conntrack: Option<i64>,
    /// BPFMapSizePerCPUConntrack determines the size of conntrack map based on the number of CPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_per_cpu_conntrack: Option<i64>,
    /// BPFMapSizeConntrackScaling controls whether and how we scale the conntrack map size depending on its usage.
    /// [Default: DoubleIfFull]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bpf_map_size_conntrack_scaling: String,
    /// BPFMapSizeConntrackCleanupQueue sets the size for the map used to hold NAT conntrack entries that are queued for cleanup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_conntrack_cleanup_queue: Option<i64>,
    /// BPFMapSizeIPSets sets the size for ipsets map.
    #[serde(rename = "bpfMapSizeIPSets", skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_ip_sets: Option<i64>,
    /// BPFMapSizeIfState sets the size for ifstate map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_map_size_if_state: Option<i64>,
    /// BPFHostConntrackBypass Controls whether to bypass Linux conntrack in BPF mode for workloads and services.
    /// [Default: true - bypass Linux conntrack]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_host_conntrack_bypass: Option<bool>,
    /// BPFIPFragmentReassemblyEnabled controls whether Felix loads the BPF program that reassembles out-of-order IP fragments from external networks.
    /// [Default: true]
    #[serde(
        rename = "bpfIPFragmentReassemblyEnabled",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_ip_fragment_reassembly_enabled: Option<bool>,
    /// BPFEnforceRPF enforce strict RPF on all host interfaces with BPF programs regardless of what is the per-interfaces or global setting.
    /// [Default: Loose]
    #[serde(rename = "bpfEnforceRPF", skip_serializing_if = "String::is_empty")]
    pub bpf_enforce_rpf: String,
    /// BPFPolicyDebugEnabled when true, Felix records detailed information about the BPF policy programs, which can be examined with the calico-bpf command-line tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_policy_debug_enabled: Option<bool>,
    /// BPFForceTrackPacketsFromIfaces in BPF mode, forces traffic from these interfaces to skip Calico's iptables NOTRACK rule, allowing traffic from those interfaces to be ...
    /// [Default: docker+]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_force_track_packets_from_ifaces: Option<Vec<String>>,
    /// BPFDisableGROForIfaces is a regular expression that controls which interfaces Felix should disable the Generic Receive Offload [GRO] option.
    #[serde(
        rename = "bpfDisableGROForIfaces",
        skip_serializing_if = "String::is_empty"
    )]
    pub bpf_disable_gro_for_ifaces: String,
    /// BPFExcludeCIDRsFromNAT is a list of CIDRs that are to be excluded from NAT resolution so that host can handle them.
    #[serde(
        rename = "bpfExcludeCIDRsFromNAT",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_exclude_cidrs_from_nat: Option<Vec<String>>,
    /// BPFExportBufferSizeMB in BPF mode, controls the buffer size used for sending BPF events to felix.
    /// [Default: 1]
    #[serde(
        rename = "bpfExportBufferSizeMB",
        skip_serializing_if = "Option::is_none"
    )]
    pub bpf_export_buffer_size_mb: Option<i64>,
    /// IstioAmbientMode configures Felix to work together with Tigera's Istio distribution.
    /// [Default: Disabled]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istio_ambient_mode: Option<String>,
    /// IstioDSCPMark sets the value to use when directing traffic to Istio ZTunnel, when Istio is enabled.
    /// [Default: 23]
    #[serde(rename = "istioDSCPMark", skip_serializing_if = "Option::is_none")]
    pub istio_dscp_mark: Option<Dscp>,
    /// CgroupV2Path overrides the default location where to find the cgroup hierarchy.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cgroup_v2_path: String,
    /// Continuous - Felix evaluates active flows on a regular basis to determine the rule traces in the flow logs.
    /// [Default: Continuous]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_logs_policy_evaluation_mode: Option<String>,
    /// BPFRedirectToPeer controls whether traffic may be forwarded directly to the peer side of a workload’s device.
    /// [Default: Enabled]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bpf_redirect_to_peer: String,
    /// BPFAttachType controls how are the BPF programs at the network interfaces attached.
    /// [Default: Netkit]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_attach_type: Option<String>,
    /// FlowLogsFlushInterval configures the interval at which Felix exports flow logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_logs_flush_interval: Option<Duration>,
    /// When FlowLogsCollectorDebugTrace is set to true, enables the logs in the collector to be printed in their entirety.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_logs_collector_debug_trace: Option<bool>,
    /// FlowLogGoldmaneServer is the flow server endpoint to which flow data should be published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_logs_goldmane_server: Option<String>,
    /// FlowLogsLocalReporter configures local unix socket for reporting flow data from each node.
    /// [Default: Disabled]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_logs_local_reporter: Option<String>,
    /// BPFProfiling controls profiling of BPF programs.
    /// [Default: Disabled]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bpf_profiling: String,
    /// RouteSource configures where Felix gets its routing information.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub route_source: String,
    /// Calico programs additional Linux route tables for various purposes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_table_ranges: Option<Vec<RouteTableIDRange>>,
    /// Deprecated in favor of RouteTableRanges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_table_range: Option<RouteTableRange>,
    /// RouteSyncDisabled will disable all operations performed on the route table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_sync_disabled: Option<bool>,
    /// Route Priority value for a normal priority Calico-programmed IPv4 route.
    /// [Default: 1024]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_normal_route_priority: Option<i64>,
    /// Route Priority value for an elevated priority Calico-programmed IPv4 route.
    /// [Default: 512]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_elevated_route_priority: Option<i64>,
    /// Route Priority value for a normal priority Calico-programmed IPv6 route.
    /// [Default: 1024]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_normal_route_priority: Option<i64>,
    /// Route Priority value for an elevated priority Calico-programmed IPv6 route.
    /// [Default: 512]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_elevated_route_priority: Option<i64>,
    /// LiveMigrationRouteConvergenceTime is the time to keep elevated route priority after a VM live migration completes.
    /// [Default: 30s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_migration_route_convergence_time: Option<Duration>,
    /// WireguardEnabled controls whether Wireguard is enabled for IPv4 (encapsulating IPv4 traffic over an IPv4 underlay network).
    /// [Default: false]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_enabled: Option<bool>,
    /// WireguardEnabledV6 controls whether Wireguard is enabled for IPv6 (encapsulating IPv6 traffic over an IPv6 underlay network).
    /// [Default: false]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_enabled_v6: Option<bool>,
    /// WireguardThreadingEnabled controls whether Wireguard has Threaded NAPI enabled.
    /// [Default: false]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_threading_enabled: Option<bool>,
    /// WireguardListeningPort controls the listening port used by IPv4 Wireguard.
    /// [Default: 51820]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_listening_port: Option<i64>,
    /// WireguardListeningPortV6 controls the listening port used by IPv6 Wireguard.
    /// [Default: 51821]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_listening_port_v6: Option<i64>,
    /// WireguardRoutingRulePriority controls the priority value to use for the Wireguard routing rule.
    /// [Default: 99]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_routing_rule_priority: Option<i64>,
    /// WireguardInterfaceName specifies the name to use for the IPv4 Wireguard interface.
    /// [Default: wireguard.cali]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub wireguard_interface_name: String,
    /// WireguardInterfaceNameV6 specifies the name to use for the IPv6 Wireguard interface.
    /// [Default: wg-v6.cali]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub wireguard_interface_name_v6: String,
    /// WireguardMTU controls the MTU on the IPv4 Wireguard interface.
    /// [Default: 1440]
    #[serde(rename = "wireguardMTU", skip_serializing_if = "Option::is_none")]
    pub wireguard_mtu: Option<i64>,
    /// WireguardMTUV6 controls the MTU on the IPv6 Wireguard interface.
    /// [Default: 1420]
    #[serde(rename = "wireguardMTUV6", skip_serializing_if = "Option::is_none")]
    pub wireguard_mtu_v6: Option<i64>,
    /// WireguardHostEncryptionEnabled controls whether Wireguard host-to-host encryption is enabled.
    /// [Default: false]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_host_encryption_enabled: Option<bool>,
    /// WireguardPersistentKeepAlive controls Wireguard PersistentKeepalive option.
    /// [Default: 0]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wireguard_keep_alive: Option<Duration>,
    /// AWSSrcDstCheck controls whether Felix will try to change the "source/dest check" setting on the EC2 instance on which it is running.
    /// [Default: DoNothing]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_src_dst_check: Option<String>,
    /// When service IP advertisement is enabled, prevent routing loops to service IPs that are not in use, by dropping or rejecting packets that do not get DNAT'd by kube-proxy.
    /// [Default: Drop]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service_loop_prevention: String,
    /// WorkloadSourceSpoofing controls whether pods can use the allowedSourcePrefixes annotation to send traffic with a source IP address that is not theirs.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub workload_source_spoofing: String,
    /// MTUIfacePattern is a regular expression that controls which interfaces Felix should scan in order to calculate the host's MTU.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mtu_iface_pattern: String,
    /// FloatingIPs configures whether or not Felix will program non-OpenStack floating IP addresses.
    #[serde(rename = "floatingIPs", skip_serializing_if = "Option::is_none")]
    pub floating_ips: Option<String>,
    /// LocalSubnetL2Reachability controls whether Felix automatically responds to ARP (IPv4) and NDP (IPv6) requests on host interfaces for local pod IPs and selected ...
    /// [Default: Disabled]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_subnet_l2_reachability: Option<String>,
    /// LocalSubnetL2ReachabilityRefreshInterval controls how often Felix re-announces (gratuitous ARP / unsolicited NA) every IP it proxies ARP/NDP for when ...
    /// [Default: 120s]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_subnet_l2_reachability_refresh_interval: Option<Duration>,
    /// WindowsManageFirewallRules configures whether or not Felix will program Windows Firewall rules (to allow inbound access to its own metrics ports).
    /// [Default: Disabled]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_manage_firewall_rules: Option<String>,
    /// GoGCThreshold Sets the Go runtime's garbage collection threshold.
    /// [Default: 40]
    #[serde(rename = "goGCThreshold", skip_serializing_if = "Option::is_none")]
    pub go_gc_threshold: Option<i64>,
    /// GoMemoryLimitMB sets a (soft) memory limit for the Go runtime in MB.
    /// [Default: -1]
    #[serde(rename = "goMemoryLimitMB", skip_serializing_if = "Option::is_none")]
    pub go_memory_limit_mb: Option<i64>,
    /// GoMaxProcs sets the maximum number of CPUs that the Go runtime will use concurrently.
    /// [Default: -1]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go_max_procs: Option<i64>,
    /// RequireMTUFile specifies whether mtu file is required to start the felix.
    /// [Default: false]
    #[serde(rename = "requireMTUFile", skip_serializing_if = "Option::is_none")]
    pub require_mtu_file: Option<bool>,
    /// BPFMaglevMaxEndpointsPerService is the maximum number of endpoints expected to be part of a single Maglev-enabled service.
    /// [Default: 100]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_maglev_max_endpoints_per_service: Option<i64>,
    /// BPFMaglevMaxServices is the maximum number of expected Maglev-enabled services that Felix will allocate lookup-tables for.
    /// [Default: 100]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bpf_maglev_max_services: Option<i64>,
}

/// A health-check timeout override (`name` of a Felix health reporter, `timeout` ≥ 0).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthTimeoutOverride {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub timeout: Duration,
}

/// Legacy single route-table range (`min`..`max` within 1..250).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTableRange {
    #[serde(default)]
    pub min: i64,
    #[serde(default)]
    pub max: i64,
}

/// One entry of `routeTableRanges` (indices up to 0xffffffff).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTableIDRange {
    #[serde(default)]
    pub min: i64,
    #[serde(default)]
    pub max: i64,
}

/// A failsafe port: protocol, port and optional CIDR the exception is limited to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtoPort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// Required by the schema; Go always writes it.
    #[serde(default)]
    pub port: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub net: String,
}

/// BPF conntrack timeouts: Go-style durations (`30s`, `1h`, `300ms`, `us` allowed) or `Auto`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BPFConntrackTimeouts {
    #[serde(
        rename = "creationGracePeriod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub creation_grace_period: Option<String>,
    #[serde(
        rename = "tcpSynSent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_syn_sent: Option<String>,
    #[serde(
        rename = "tcpEstablished",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_established: Option<String>,
    #[serde(
        rename = "tcpFinsSeen",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_fins_seen: Option<String>,
    #[serde(
        rename = "tcpResetSeen",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_reset_seen: Option<String>,
    #[serde(
        rename = "udpTimeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub udp_timeout: Option<String>,
    #[serde(
        rename = "genericTimeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub generic_timeout: Option<String>,
    #[serde(
        rename = "icmpTimeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub icmp_timeout: Option<String>,
}

impl BPFConntrackTimeouts {
    /// (JSON name, value) of every timeout that is set.
    pub fn entries(&self) -> Vec<(&'static str, &str)> {
        [
            ("creationGracePeriod", &self.creation_grace_period),
            ("tcpSynSent", &self.tcp_syn_sent),
            ("tcpEstablished", &self.tcp_established),
            ("tcpFinsSeen", &self.tcp_fins_seen),
            ("tcpResetSeen", &self.tcp_reset_seen),
            ("udpTimeout", &self.udp_timeout),
            ("genericTimeout", &self.generic_timeout),
            ("icmpTimeout", &self.icmp_timeout),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

impl CalicoResource for FelixConfiguration {
    const KIND: &'static str = "FelixConfiguration";

    crate::resource::metadata_accessors!();

    /// `setDefaults` (clientv3/felixconfig.go): floatingIPs Disabled, BPF connect-time load
    /// balancing TCP with host-networked NAT Enabled, and the mapping of the deprecated
    /// `bpfConnectTimeLoadBalancingEnabled` onto the two newer fields; then the CRD defaults.
    fn apply_defaults(&mut self) {
        let s = &mut self.spec;
        if s.floating_ips.is_none() {
            s.floating_ips = Some("Disabled".into());
        }
        if s.bpf_connect_time_load_balancing.is_none() {
            s.bpf_connect_time_load_balancing = Some("TCP".into());
        }
        if s.bpf_host_networked_nat_without_ctlb.is_none() {
            s.bpf_host_networked_nat_without_ctlb = Some("Enabled".into());
        }
        if let Some(enabled) = s.bpf_connect_time_load_balancing_enabled {
            s.bpf_host_networked_nat_without_ctlb = Some("Disabled".into());
            s.bpf_connect_time_load_balancing =
                Some(if enabled { "Enabled" } else { "Disabled" }.into());
        }
        if s.nftables_mode.is_none() {
            s.nftables_mode = Some("Auto".into());
        }
        if s.nftables_flow_table_offload.is_none() {
            s.nftables_flow_table_offload = Some("Disabled".into());
        }
    }

    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        crate::felixconfig_validate::validate_felix_configuration_spec(
            &self.spec,
            &FieldPath::root().field("spec"),
            errs,
        );
    }
}
