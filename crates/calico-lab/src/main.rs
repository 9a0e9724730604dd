//! `calico-lab`: a whole multi-node Calico cluster on one machine, in network namespaces.
//!
//! It owns the lab's life cycle: a fabric namespace with a bridge (the data-centre network),
//! one namespace per node running the project's `calico-node` (agent + BGP speaker), pods made
//! through the real `calico` CNI plugin, the wait for BGP convergence, the connectivity matrix,
//! and `down`, which removes exactly what the lab made. It drives the sibling binaries
//! (`calico-node`, `calico`, `calico-ipam`, `calicoctl`) as a user would and must not depend on
//! their crates' internals nor on the e2e test harness; it never touches the root network
//! namespace (every `ip` call names a lab namespace) and signals only PIDs it recorded and
//! verified in /proc.

mod agent;
mod cli;
mod cni;
mod ctl;
mod error;
mod etcd;
mod k8s;
mod lab;
mod probe;
mod routes;
mod state;
mod sys;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("calico-lab: {e}");
            ExitCode::FAILURE
        }
    }
}
