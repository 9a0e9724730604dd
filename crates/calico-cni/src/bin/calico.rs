//! The `calico` CNI plugin: reads `CNI_*` and the network configuration, prints one JSON
//! document on stdout and exits 0 or 1 (see `calico_cni::system`).

fn main() {
    std::process::exit(calico_cni::system::main(calico_cni::system::Which::Calico));
}
