//! `calicoctl node`: commands run on a compute host about the Calico node there
//! (`calicoctl/calicoctl/commands/node_command_linux.go`). Only `status` is implemented:
//! `run` starts Calico's container image and `diags`/`checksystem` inspect a Calico install,
//! none of which applies to calico-rs.

mod status;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// View the current status of a Calico node.
    #[command(
        long_about = "Show the current status of the Calico node on this host, including uptime \
                      and BGP peering states. Must be run on the node whose status you want.",
        after_help = "Examples:\n  calicoctl node status\n\nThe BGP speaker is asked on its \
                      status socket, /var/run/calico/bgp.ctl unless CALICO_BGP_STATUS_SOCKET \
                      names another."
    )]
    Status,
}

/// Runs a `node` command; prints its output and exits with its code, as calicoctl does.
pub fn run(cmd: NodeCmd) -> ! {
    match cmd {
        NodeCmd::Status => {
            let report = status::run_status();
            report.emit()
        }
    }
}
