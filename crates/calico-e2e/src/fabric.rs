//! The network between simulated hosts: a namespace holding one bridge, with each node's
//! uplink (the far end of its `eth0` veth) moved in and attached, so nodes on one subnet
//! reach each other at layer 2 as hosts on a top-of-rack switch do. The fabric namespace
//! can also hold a router-like peer (BIRD, GoBGP) by giving it an address on the bridge.
//! Everything lives in namespaces created here and goes when the fabric drops.

use std::process::Command;

use calico_netlink::testing::TestNetns;

use crate::HarnessError;
use crate::node::Node;

/// The shared layer-2 segment.
pub struct Fabric {
    pub ns: TestNetns,
    attached: usize,
}

impl Fabric {
    /// Creates the namespace and its bridge `br0` (up).
    pub fn new() -> Result<Fabric, HarnessError> {
        let ns = TestNetns::new("e2e-fabric")
            .map_err(|e| HarnessError::Failed(format!("creating the fabric namespace: {e}")))?;
        let fabric = Fabric { ns, attached: 0 };
        fabric.ip(&["link", "add", "br0", "type", "bridge"])?;
        fabric.ip(&["link", "set", "br0", "up"])?;
        Ok(fabric)
    }

    /// `ip -n <fabric> ...`.
    pub fn ip(&self, args: &[&str]) -> Result<String, HarnessError> {
        crate::run_checked(Command::new("ip").arg("-n").arg(self.ns.name()).args(args))
    }

    /// Moves `node`'s uplink into the fabric and attaches it to the bridge.
    pub fn attach(&mut self, node: &Node) -> Result<(), HarnessError> {
        let port = format!("port{}", self.attached);
        self.attached += 1;
        let node_ns = node.ns.name();
        for args in [
            vec!["-n", node_ns, "link", "set", "uplink0", "down"],
            vec!["-n", node_ns, "link", "set", "uplink0", "name", &port],
            vec!["-n", node_ns, "link", "set", &port, "netns", self.ns.name()],
        ] {
            crate::run_checked(Command::new("ip").args(&args))?;
        }
        self.ip(&["link", "set", &port, "master", "br0"])?;
        self.ip(&["link", "set", &port, "up"])?;
        Ok(())
    }

    /// A new namespace on the fabric (a router, a BGP peer daemon): `eth0` with `cidr`,
    /// its other end on the bridge.
    pub fn add_host(&mut self, cidr: &str) -> Result<TestNetns, HarnessError> {
        let host = TestNetns::new("e2e-host")
            .map_err(|e| HarnessError::Failed(format!("creating a host namespace: {e}")))?;
        let port = format!("port{}", self.attached);
        self.attached += 1;
        // Both ends are born in the host namespace and one is moved straight to the
        // fabric: nothing ever exists in the root namespace.
        for args in [
            vec![
                "-n",
                host.name(),
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                &port,
            ],
            vec![
                "-n",
                host.name(),
                "link",
                "set",
                &port,
                "netns",
                self.ns.name(),
            ],
            vec!["-n", host.name(), "addr", "add", cidr, "dev", "eth0"],
            vec!["-n", host.name(), "link", "set", "eth0", "up"],
        ] {
            crate::run_checked(Command::new("ip").args(&args))?;
        }
        self.ip(&["link", "set", &port, "master", "br0"])?;
        self.ip(&["link", "set", &port, "up"])?;
        Ok(host)
    }

    /// Gives the fabric itself an address on the bridge (for a peer running in it).
    pub fn add_address(&self, cidr: &str) -> Result<(), HarnessError> {
        self.ip(&["addr", "add", cidr, "dev", "br0"])?;
        Ok(())
    }
}
