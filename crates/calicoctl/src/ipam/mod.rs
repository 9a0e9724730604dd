//! `calicoctl ipam`: show, check, release and configure Calico IPAM
//! (`calicoctl/calicoctl/commands/ipam_command.go` and `commands/ipam/*.go`), with calicoctl's
//! flags, messages, tables and report format.
//!
//! Everything here reads and writes through `calico-ipam` (blocks, handles, affinities, the
//! IPAM config, releases) and `calico-client` (IPPools, IPReservations, Nodes,
//! WorkloadEndpoints, ClusterInformation). Pure computations (pool utilisation, report merging,
//! block validation, table rendering) live in their own functions so they are unit-tested
//! without a datastore.

mod check;
mod configure;
pub(crate) mod gotable;
mod release;
mod report;
mod show;
mod space;

use std::net::IpAddr;
use std::sync::Arc;

use calico_client::{ApiConfig, Client};
use calico_ipam::{DatastoreResources, IpamClient};
use clap::{Args, Subcommand};

use crate::DEFAULT_CONFIG;

/// calicoctl's version string, as `calicoctl version` prints it; reports carry it and
/// `release --from-report` compares it (`buildinfo.Version`).
pub fn calicoctl_version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Subcommand, Debug)]
pub enum IpamCmd {
    /// Check the integrity of the IPAM datastructures.
    #[command(
        long_about = "Check the integrity of Calico's IPAM data structures and report leaked or \
                      improperly allocated IP addresses. The report it produces can later be \
                      passed to ipam release.",
        after_help = "Examples:\n  # Check IPAM and write a report of problem IPs.\n  \
                      calicoctl ipam check --show-problem-ips -o report.json"
    )]
    Check(CheckArgs),
    /// Release a Calico assigned IP address.
    #[command(
        long_about = "Release one or more Calico-assigned IP addresses. Release a single address \
                      with --ip, or release the leaked addresses identified in a report from \
                      ipam check.",
        after_help = "Examples:\n  # Release a single IP.\n  calicoctl ipam release --ip 10.0.0.1\n\n  \
                      # Release leaked IPs from a check report.\n  \
                      calicoctl ipam release --from-report report.json"
    )]
    Release(ReleaseArgs),
    /// Show details of a Calico assigned IP address or overall IP usage.
    #[command(
        long_about = "Show details of Calico IP address usage. With no flags it summarizes pool \
                      usage; the flags drill into a specific address, individual blocks, \
                      borrowed addresses, or the current IPAM configuration.",
        after_help = "Examples:\n  # Summarize IP pool usage.\n  calicoctl ipam show\n\n  \
                      # Check whether a specific IP is in use.\n  calicoctl ipam show --ip 10.0.0.1"
    )]
    Show(ShowArgs),
    /// Configure IPAM.
    #[command(
        long_about = "Configure cluster-wide Calico IPAM settings, such as strict affinity and \
                      the maximum number of blocks per host.",
        after_help = "Examples:\n  # Require strict affinity (disable IP borrowing).\n  \
                      calicoctl ipam configure --strictaffinity=true"
    )]
    Configure(ConfigureArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Path to the file containing connection configuration in YAML or JSON format.
    #[arg(short = 'c', long, default_value = DEFAULT_CONFIG)]
    pub config: String,
    /// Print all IPs that are checked.
    #[arg(long = "show-all-ips")]
    pub show_all_ips: bool,
    /// Print all IPs that are leaked or not allocated properly.
    #[arg(long = "show-problem-ips")]
    pub show_problem_ips: bool,
    /// Path to output report file.
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    /// Path to Kubeconfig file (accepted for compatibility; services are not read).
    #[arg(long)]
    pub kubeconfig: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReleaseArgs {
    /// Path to the file containing connection configuration in YAML or JSON format.
    #[arg(short = 'c', long, default_value = DEFAULT_CONFIG)]
    pub config: String,
    /// IP address to release.
    #[arg(long)]
    pub ip: Option<String>,
    /// Release all leaked addresses from the report (may be repeated).
    #[arg(long = "from-report")]
    pub from_report: Vec<String>,
    /// Force release of leaked addresses.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Path to the file containing connection configuration in YAML or JSON format.
    #[arg(short = 'c', long, default_value = DEFAULT_CONFIG)]
    pub config: String,
    /// Report whether this specific IP address is in use.
    #[arg(long)]
    pub ip: Option<String>,
    /// Show detailed information for IP blocks as well as pools.
    #[arg(long = "show-blocks")]
    pub show_blocks: bool,
    /// Show detailed information for borrowed IP addresses.
    #[arg(long = "show-borrowed")]
    pub show_borrowed: bool,
    /// Show current Calico IPAM configuration.
    #[arg(long = "show-configuration")]
    pub show_configuration: bool,
}

#[derive(Args, Debug)]
pub struct ConfigureArgs {
    /// Path to the file containing connection configuration in YAML or JSON format.
    #[arg(short = 'c', long, default_value = DEFAULT_CONFIG)]
    pub config: String,
    /// Set StrictAffinity to true/false.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub strictaffinity: String,
    /// Set the maximum number of blocks that can be affine to a host.
    #[arg(
        long = "max-blocks-per-host",
        default_value = "",
        hide_default_value = true,
        allow_hyphen_values = true
    )]
    pub max_blocks_per_host: String,
    /// Control whether KubeVirt VMs retain persistent IP addresses (Enabled|Disabled).
    #[arg(
        long = "kubevirt-ip-persistence",
        default_value = "",
        hide_default_value = true
    )]
    pub kubevirt_ip_persistence: String,
    /// Set the minimum time between release and re-allocation of an IP address.
    #[arg(
        long = "ip-cooldown-seconds",
        default_value_t = -1,
        allow_negative_numbers = true
    )]
    pub ip_cooldown_seconds: i64,
}

/// The datastore plus an IPAM client over it.
pub struct Ctx {
    pub client: Client,
    pub ipam: IpamClient,
}

/// Opens the configured datastore; like calicoctl, a failure prints
/// `Failed to create Calico API client: ...` and exits 1.
async fn connect(config: &str) -> Ctx {
    let result = async {
        let cfg = ApiConfig::load(Some(std::path::Path::new(config)))?;
        cfg.connect().await
    }
    .await;
    match result {
        Ok(ds) => {
            let ipam = IpamClient::new(ds.clone(), Arc::new(DatastoreResources::new(ds.clone())));
            Ctx {
                client: Client::new(ds),
                ipam,
            }
        }
        Err(e) => {
            println!("Failed to create Calico API client: {e}");
            std::process::exit(1);
        }
    }
}

/// `argutils.ValidateIP`: an unparsable address prints calicoctl's message and exits 1.
fn validate_ip(s: &str) -> IpAddr {
    match s.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            println!("Error executing command: invalid IP address specified: {s}");
            std::process::exit(1);
        }
    }
}

pub async fn run(cmd: IpamCmd) -> anyhow::Result<()> {
    match cmd {
        IpamCmd::Show(a) => {
            let ctx = connect(&a.config).await;
            if let Some(ip) = a.ip.as_deref().filter(|s| !s.is_empty()) {
                show::show_ip(&ctx, validate_ip(ip)).await
            } else if a.show_blocks {
                show::show_utilization(&ctx, true).await
            } else if a.show_borrowed {
                show::show_borrowed(&ctx).await
            } else if a.show_configuration {
                show::show_configuration(&ctx).await
            } else {
                show::show_utilization(&ctx, false).await
            }
        }
        IpamCmd::Check(a) => {
            let ctx = connect(&a.config).await;
            let opts = check::CheckOptions {
                show_all_ips: a.show_all_ips,
                // calicoctl: --show-all-ips implies --show-problem-ips.
                show_problem_ips: a.show_all_ips || a.show_problem_ips,
                out_file: a.output.filter(|s| !s.is_empty()),
                version: calicoctl_version(),
            };
            check::check_ipam(&ctx, &opts).await
        }
        IpamCmd::Release(a) => {
            let ctx = connect(&a.config).await;
            if !a.from_report.is_empty() {
                release::release_from_reports(&ctx, a.force, &a.from_report, &calicoctl_version())
                    .await?;
                println!("You may now unlock the data store.");
                return Ok(());
            }
            if let Some(ip) = a.ip.as_deref().filter(|s| !s.is_empty()) {
                release::release_ip(&ctx, validate_ip(ip)).await?;
            }
            Ok(())
        }
        IpamCmd::Configure(a) => {
            let ctx = connect(&a.config).await;
            configure::configure(&ctx, &a).await
        }
    }
}
