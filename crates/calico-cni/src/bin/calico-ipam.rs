//! The `calico-ipam` CNI IPAM plugin: assigns and releases addresses through calico-node's
//! IPAM service (see `calico_cni::system`).

fn main() {
    std::process::exit(calico_cni::system::main(
        calico_cni::system::Which::CalicoIpam,
    ));
}
