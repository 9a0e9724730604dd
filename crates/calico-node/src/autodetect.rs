//! Node IP autodetection as Calico's (`node/pkg/lifecycle/startup/autodetection/`):
//! `first-found` (skipping Calico's default list of internal interface names), `interface=`,
//! `skip-interface=`, `cidr=` and `can-reach=`. Pure logic over a [`HostNetwork`] that lists
//! interfaces with their addresses (the agent's implementation reads them over netlink inside
//! its network namespace) and tells which source address a UDP connect picks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};

use ipnet::IpNet;
use regex::Regex;

/// `IP_AUTODETECTION_METHOD` / `IP6_AUTODETECTION_METHOD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutodetectMethod {
    /// `first-found` (also the empty value).
    FirstFound,
    /// `interface=<regex>[,<regex>...]`.
    Interface(Vec<String>),
    /// `skip-interface=<regex>[,<regex>...]`: first-found, also skipping these.
    SkipInterface(Vec<String>),
    /// `cidr=<cidr>[,<cidr>...]`: the first address inside one of these.
    Cidr(Vec<IpNet>),
    /// `can-reach=<ip or host name>`: the source address used towards it.
    CanReach(String),
    /// `kubernetes-internal-ip`: needs the Kubernetes API, which this agent does not use.
    KubernetesInternalIp,
}

/// Calico's `DEFAULT_INTERFACES_TO_EXCLUDE` (`autodetection_linux.go`).
pub const DEFAULT_INTERFACES_TO_EXCLUDE: &[&str] = &[
    "^docker.*",
    "^cbr.*",
    "^dummy.*",
    "^podman.*",
    "^virbr.*",
    "^lxcbr.*",
    "^veth.*",
    "^lo",
    "^br-.*",
    "^cali.*",
    "^tunl.*",
    "^flannel.*",
    "^kube-ipvs.*",
    "^cni.*",
    "^vxlan\\.calico.*",
    "^vxlan-v6\\.calico.*",
    "^wireguard\\.cali.*",
    "^wg-v6\\.cali.*",
    "^nodelocaldns.*",
];

/// Splits a method argument the way Calico does (`\s*,\s*`).
fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(|p| p.trim().to_string()).collect()
}

impl AutodetectMethod {
    /// Parses a method; `Err` says what is wrong (the caller names the variable).
    pub fn parse(s: &str) -> Result<AutodetectMethod, String> {
        if s.is_empty() || s == "first-found" {
            return Ok(AutodetectMethod::FirstFound);
        }
        let check_regexes = |list: Vec<String>| -> Result<Vec<String>, String> {
            for r in &list {
                Regex::new(r).map_err(|e| format!("invalid interface regex {r:?}: {e}"))?;
            }
            Ok(list)
        };
        if let Some(rest) = s.strip_prefix("interface=") {
            return Ok(AutodetectMethod::Interface(check_regexes(split_list(
                rest,
            ))?));
        }
        if let Some(rest) = s.strip_prefix("skip-interface=") {
            return Ok(AutodetectMethod::SkipInterface(check_regexes(split_list(
                rest,
            ))?));
        }
        if let Some(rest) = s.strip_prefix("cidr=") {
            let mut nets = Vec::new();
            for c in split_list(rest) {
                let n: IpNet = c
                    .parse()
                    .map_err(|_| format!("invalid CIDR {c:?} for IP autodetection method"))?;
                nets.push(n.trunc());
            }
            return Ok(AutodetectMethod::Cidr(nets));
        }
        if let Some(rest) = s.strip_prefix("can-reach=") {
            if rest.trim().is_empty() {
                return Err("can-reach= needs a destination address or host name".into());
            }
            return Ok(AutodetectMethod::CanReach(rest.trim().to_string()));
        }
        if s.starts_with("kubernetes-internal-ip") {
            return Ok(AutodetectMethod::KubernetesInternalIp);
        }
        Err(format!(
            "invalid IP autodetection method {s:?}; expected first-found, interface=, \
             skip-interface=, cidr= or can-reach="
        ))
    }
}

/// Why no address could be detected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutodetectError {
    #[error("listing host interfaces: {0}")]
    Enumerate(String),
    #[error("invalid interface regex: {0}")]
    Regex(String),
    #[error("no valid host interfaces found")]
    NoInterfaces,
    #[error("no valid IPv{0} addresses found on the host interfaces")]
    NoAddress(u8),
    #[error("connecting to {dest} to learn the IPv{version} source address: {reason}")]
    Reach {
        dest: String,
        version: u8,
        reason: String,
    },
    #[error(
        "autodetected IPv{version} address does not match any addresses found on local interfaces: {ip}"
    )]
    ReachNoMatch { version: u8, ip: IpAddr },
    #[error(
        "method kubernetes-internal-ip needs the Kubernetes API, which this calico-node does not use"
    )]
    NoKubernetes,
}

/// One interface with its addresses (address + prefix length, host bits kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInterface {
    pub index: u32,
    pub name: String,
    pub addrs: Vec<IpNet>,
}

/// What autodetection needs from the host.
pub trait HostNetwork: Send + Sync {
    /// Every interface with its addresses, in interface-index order (as Go's
    /// `net.Interfaces` lists them).
    fn interfaces(&self) -> Result<Vec<HostInterface>, AutodetectError>;
    /// The local address a UDP socket connected to `dest` port 80 gets (no packet is sent).
    fn source_address_towards(&self, dest: &str, version: u8) -> Result<IpAddr, AutodetectError>;
}

/// An interface after filtering, with the addresses of the requested families.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub cidrs: Vec<IpNet>,
}

fn version_of(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() { 4 } else { 6 }
}

fn combined(regexes: &[String]) -> Result<Option<Regex>, AutodetectError> {
    if regexes.is_empty() {
        return Ok(None);
    }
    let joined = format!("({})", regexes.join(")|("));
    Regex::new(&joined)
        .map(Some)
        .map_err(|e| AutodetectError::Regex(e.to_string()))
}

/// `GetInterfaces`: interfaces whose name matches an include regex (all when none) and no
/// exclude regex, in REVERSE index order (Calico keeps this "to maintain behavior with older
/// versions"), each with its addresses of the given IP versions.
pub fn get_interfaces(
    host: &dyn HostNetwork,
    include: &[String],
    exclude: &[String],
    versions: &[u8],
) -> Result<Vec<Interface>, AutodetectError> {
    let all = host.interfaces()?;
    let incl = combined(include)?;
    let excl = combined(exclude)?;
    Ok(all
        .into_iter()
        .rev()
        .filter(|i| incl.as_ref().is_none_or(|r| r.is_match(&i.name)))
        .filter(|i| !excl.as_ref().is_some_and(|r| r.is_match(&i.name)))
        .map(|i| Interface {
            name: i.name,
            cidrs: i
                .addrs
                .into_iter()
                .filter(|a| versions.contains(&version_of(&a.addr())))
                .collect(),
        })
        .collect())
}

/// Go's `net.IP.IsGlobalUnicast`: not unspecified, loopback, multicast, link-local or the
/// IPv4 limited broadcast address. Private ranges count as global unicast.
pub fn is_global_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !v4.is_unspecified()
                && !v4.is_loopback()
                && !v4.is_multicast()
                && !v4.is_link_local()
                && *v4 != Ipv4Addr::BROADCAST
        }
        IpAddr::V6(v6) => {
            !v6.is_unspecified()
                && !v6.is_loopback()
                && !v6.is_multicast()
                && !v6.is_unicast_link_local()
        }
    }
}

/// `FilteredEnumeration`: the first global-unicast address (inside one of `cidrs`, when
/// given) of the filtered interfaces.
pub fn filtered_enumeration(
    host: &dyn HostNetwork,
    include: &[String],
    exclude: &[String],
    cidrs: &[IpNet],
    version: u8,
) -> Result<(String, IpNet), AutodetectError> {
    let ifaces = get_interfaces(host, include, exclude, &[version])?;
    if ifaces.is_empty() {
        return Err(AutodetectError::NoInterfaces);
    }
    for i in ifaces {
        for c in &i.cidrs {
            let ip = c.addr();
            if is_global_unicast(&ip) && (cidrs.is_empty() || cidrs.iter().any(|n| n.contains(&ip)))
            {
                return Ok((i.name.clone(), *c));
            }
        }
    }
    Err(AutodetectError::NoAddress(version))
}

/// A detected node address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The interface it is on.
    pub interface: String,
    /// Address and prefix length, host bits kept (e.g. `10.0.0.5/24`).
    pub cidr: IpNet,
}

/// `AutoDetectCIDR`: the node's IPv`version` address by `method`.
pub fn autodetect(
    host: &dyn HostNetwork,
    method: &AutodetectMethod,
    version: u8,
) -> Result<Detected, AutodetectError> {
    let defaults: Vec<String> = DEFAULT_INTERFACES_TO_EXCLUDE
        .iter()
        .map(|s| s.to_string())
        .collect();
    let found = match method {
        AutodetectMethod::FirstFound => filtered_enumeration(host, &[], &defaults, &[], version)?,
        AutodetectMethod::Interface(re) => filtered_enumeration(host, re, &[], &[], version)?,
        AutodetectMethod::SkipInterface(re) => {
            let mut excl = defaults;
            excl.extend(re.iter().cloned());
            filtered_enumeration(host, &[], &excl, &[], version)?
        }
        AutodetectMethod::Cidr(nets) => filtered_enumeration(host, &[], &[], nets, version)?,
        AutodetectMethod::CanReach(dest) => {
            let ip = host.source_address_towards(dest, version)?;
            // ReachDestination: the interface address equal to the source address.
            let ifaces = get_interfaces(host, &[], &[], &[version])?;
            ifaces
                .into_iter()
                .find_map(|i| {
                    i.cidrs
                        .iter()
                        .find(|c| c.addr() == ip)
                        .map(|c| (i.name.clone(), *c))
                })
                .ok_or(AutodetectError::ReachNoMatch { version, ip })?
        }
        AutodetectMethod::KubernetesInternalIp => return Err(AutodetectError::NoKubernetes),
    };
    Ok(Detected {
        interface: found.0,
        cidr: found.1,
    })
}

/// `GetLocalCIDR` for an address given without a prefix: the prefix of the interface address
/// equal to it, else a host prefix (`/32`, `/128`), as `parseIPEnvironment` then renders it.
pub fn local_cidr(host: &dyn HostNetwork, ip: IpAddr) -> Result<IpNet, AutodetectError> {
    let version = version_of(&ip);
    for i in get_interfaces(host, &[], &[], &[version])? {
        if let Some(c) = i.cidrs.iter().find(|c| c.addr() == ip) {
            return Ok(*c);
        }
    }
    Ok(IpNet::from(ip))
}

/// Whether `ip` is on one of the host's interfaces (`validateIP`; Calico only warns when not).
pub fn is_local_address(host: &dyn HostNetwork, ip: IpAddr) -> Result<bool, AutodetectError> {
    Ok(get_interfaces(host, &[], &[], &[version_of(&ip)])?
        .iter()
        .any(|i| i.cidrs.iter().any(|c| c.addr() == ip)))
}

/// `GetDefaultIPv4Pool`: `preferred` unless a host IPv4 address lies inside it, then the first
/// of 172.16.0.0/16 … 172.31.0.0/16 that holds none, else `preferred` anyway.
pub fn default_ipv4_pool(host_addrs: &[IpNet], preferred: IpNet) -> IpNet {
    let overlaps = |pool: &IpNet| host_addrs.iter().any(|a| pool.contains(&a.addr()));
    if !overlaps(&preferred) {
        return preferred;
    }
    for i in 16..=31u8 {
        let candidate =
            IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::new(172, i, 0, 0), 16).unwrap_or_default());
        if !overlaps(&candidate) {
            return candidate;
        }
    }
    preferred
}

/// The source address the kernel of the CALLING THREAD's network namespace picks for a UDP
/// "connection" to `dest`:80 (`ReachDestination`). Resolves host names for the given family.
/// No packet is sent: connecting a UDP socket only selects a route and a source.
pub fn udp_source_address(dest: &str, version: u8) -> Result<IpAddr, AutodetectError> {
    let err = |reason: String| AutodetectError::Reach {
        dest: dest.to_string(),
        version,
        reason,
    };
    let host = dest.trim_start_matches('[').trim_end_matches(']');
    let target: SocketAddr = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, 80),
        Err(_) => (host, 80)
            .to_socket_addrs()
            .map_err(|e| err(e.to_string()))?
            .find(|a| version_of(&a.ip()) == version)
            .ok_or_else(|| err(format!("no IPv{version} address for the name")))?,
    };
    if version_of(&target.ip()) != version {
        return Err(err(format!("not an IPv{version} address")));
    }
    let bind: SocketAddr = if version == 4 {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).map_err(|e| err(e.to_string()))?;
    sock.connect(target).map_err(|e| err(e.to_string()))?;
    let local = sock.local_addr().map_err(|e| err(e.to_string()))?;
    Ok(local.ip())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A host with fixed interfaces; `reach` maps destinations to source addresses.
    struct FakeHost {
        ifaces: Vec<HostInterface>,
        reach: Vec<(String, IpAddr)>,
    }

    impl HostNetwork for FakeHost {
        fn interfaces(&self) -> Result<Vec<HostInterface>, AutodetectError> {
            Ok(self.ifaces.clone())
        }
        fn source_address_towards(
            &self,
            dest: &str,
            version: u8,
        ) -> Result<IpAddr, AutodetectError> {
            self.reach
                .iter()
                .find(|(d, _)| d == dest)
                .map(|(_, ip)| *ip)
                .ok_or(AutodetectError::Reach {
                    dest: dest.into(),
                    version,
                    reason: "network is unreachable".into(),
                })
        }
    }

    fn iface(index: u32, name: &str, addrs: &[&str]) -> HostInterface {
        HostInterface {
            index,
            name: name.into(),
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn host() -> FakeHost {
        FakeHost {
            ifaces: vec![
                iface(1, "lo", &["127.0.0.1/8", "::1/128"]),
                iface(2, "eth0", &["10.0.0.5/24", "fe80::1/64", "fd00::5/64"]),
                iface(3, "docker0", &["172.17.0.1/16"]),
                iface(4, "eth1", &["169.254.3.3/16", "192.168.7.9/24"]),
                iface(5, "cali1234", &["10.9.9.9/32"]),
                iface(6, "ens3", &[]),
            ],
            reach: vec![
                ("10.0.0.1".into(), "10.0.0.5".parse().unwrap()),
                ("8.8.8.8".into(), "192.168.7.9".parse().unwrap()),
                ("1.1.1.1".into(), "10.77.0.1".parse().unwrap()),
            ],
        }
    }

    #[test]
    fn methods_parse() {
        use AutodetectMethod as M;
        let ok: &[(&str, M)] = &[
            ("", M::FirstFound),
            ("first-found", M::FirstFound),
            ("interface=eth.*", M::Interface(vec!["eth.*".into()])),
            (
                "interface=eth0 , ens.*",
                M::Interface(vec!["eth0".into(), "ens.*".into()]),
            ),
            ("skip-interface=eth1", M::SkipInterface(vec!["eth1".into()])),
            (
                "cidr=10.0.0.0/8, 192.168.1.7/24",
                M::Cidr(vec![
                    "10.0.0.0/8".parse().unwrap(),
                    "192.168.1.0/24".parse().unwrap(),
                ]),
            ),
            ("can-reach=8.8.8.8", M::CanReach("8.8.8.8".into())),
            (
                "can-reach=www.google.com",
                M::CanReach("www.google.com".into()),
            ),
            ("kubernetes-internal-ip", M::KubernetesInternalIp),
        ];
        for (s, want) in ok {
            assert_eq!(&AutodetectMethod::parse(s).unwrap(), want, "{s}");
        }
        for bad in [
            "first",
            "interface=eth(",
            "cidr=10.0.0.0/33",
            "cidr=bogus",
            "can-reach=",
            "Interface=eth0",
        ] {
            assert!(AutodetectMethod::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interfaces_are_listed_in_reverse_and_filtered() {
        let h = host();
        let names: Vec<String> = get_interfaces(&h, &[], &[], &[4])
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["ens3", "cali1234", "eth1", "docker0", "eth0", "lo"]);
        let defaults: Vec<String> = DEFAULT_INTERFACES_TO_EXCLUDE
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got = get_interfaces(&h, &[], &defaults, &[6]).unwrap();
        assert_eq!(
            got,
            vec![
                Interface {
                    name: "ens3".into(),
                    cidrs: vec![]
                },
                Interface {
                    name: "eth1".into(),
                    cidrs: vec![]
                },
                Interface {
                    name: "eth0".into(),
                    cidrs: vec!["fe80::1/64".parse().unwrap(), "fd00::5/64".parse().unwrap()]
                },
            ]
        );
        assert!(matches!(
            get_interfaces(&h, &["(".into()], &[], &[4]),
            Err(AutodetectError::Regex(_))
        ));
    }

    #[test]
    fn detection_table() {
        use AutodetectMethod as M;
        let h = host();
        type Case = (M, u8, Result<(&'static str, &'static str), AutodetectError>);
        let cases: Vec<Case> = vec![
            // Reverse order: eth1 (index 4) comes before eth0; its link-local is skipped.
            (M::FirstFound, 4, Ok(("eth1", "192.168.7.9/24"))),
            (M::FirstFound, 6, Ok(("eth0", "fd00::5/64"))),
            (
                M::Interface(vec!["eth0".into()]),
                4,
                Ok(("eth0", "10.0.0.5/24")),
            ),
            (
                M::Interface(vec!["docker.*".into()]),
                4,
                Ok(("docker0", "172.17.0.1/16")),
            ),
            (
                M::Interface(vec!["nope".into()]),
                4,
                Err(AutodetectError::NoInterfaces),
            ),
            (
                M::Interface(vec!["ens3".into()]),
                4,
                Err(AutodetectError::NoAddress(4)),
            ),
            (
                M::Interface(vec!["lo".into()]),
                4,
                Err(AutodetectError::NoAddress(4)),
            ),
            (
                M::SkipInterface(vec!["eth1".into()]),
                4,
                Ok(("eth0", "10.0.0.5/24")),
            ),
            (
                M::Cidr(vec!["10.0.0.0/8".parse().unwrap()]),
                4,
                Ok(("cali1234", "10.9.9.9/32")),
            ),
            (
                M::Cidr(vec!["172.16.0.0/12".parse().unwrap()]),
                4,
                Ok(("docker0", "172.17.0.1/16")),
            ),
            (
                M::Cidr(vec!["100.64.0.0/10".parse().unwrap()]),
                4,
                Err(AutodetectError::NoAddress(4)),
            ),
            (
                M::CanReach("10.0.0.1".into()),
                4,
                Ok(("eth0", "10.0.0.5/24")),
            ),
            (
                M::CanReach("8.8.8.8".into()),
                4,
                Ok(("eth1", "192.168.7.9/24")),
            ),
            (
                M::CanReach("1.1.1.1".into()),
                4,
                Err(AutodetectError::ReachNoMatch {
                    version: 4,
                    ip: "10.77.0.1".parse().unwrap(),
                }),
            ),
            (
                M::KubernetesInternalIp,
                4,
                Err(AutodetectError::NoKubernetes),
            ),
        ];
        for (method, version, want) in cases {
            let got = autodetect(&h, &method, version);
            match want {
                Ok((name, cidr)) => {
                    let d = got.unwrap_or_else(|e| panic!("{method:?}: {e}"));
                    assert_eq!(d.interface, name, "{method:?}");
                    assert_eq!(d.cidr, cidr.parse::<IpNet>().unwrap(), "{method:?}");
                }
                Err(e) => assert_eq!(got.unwrap_err(), e, "{method:?}"),
            }
        }
        assert!(matches!(
            autodetect(&h, &M::CanReach("9.9.9.9".into()), 4),
            Err(AutodetectError::Reach { .. })
        ));
    }

    #[test]
    fn global_unicast_is_gos() {
        for (ip, want) in [
            ("10.0.0.1", true),
            ("192.168.1.1", true),
            ("8.8.8.8", true),
            ("0.0.0.0", false),
            ("127.0.0.1", false),
            ("169.254.1.1", false),
            ("224.0.0.1", false),
            ("255.255.255.255", false),
            ("fd00::1", true),
            ("2001:db8::1", true),
            ("::", false),
            ("::1", false),
            ("fe80::1", false),
            ("ff02::1", false),
        ] {
            assert_eq!(is_global_unicast(&ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn local_cidr_and_validation() {
        let h = host();
        assert_eq!(
            local_cidr(&h, "10.0.0.5".parse().unwrap()).unwrap(),
            "10.0.0.5/24".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            local_cidr(&h, "10.0.0.6".parse().unwrap()).unwrap(),
            "10.0.0.6/32".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            local_cidr(&h, "fd00::5".parse().unwrap()).unwrap(),
            "fd00::5/64".parse::<IpNet>().unwrap()
        );
        assert!(is_local_address(&h, "192.168.7.9".parse().unwrap()).unwrap());
        assert!(!is_local_address(&h, "192.168.7.10".parse().unwrap()).unwrap());
    }

    #[test]
    fn default_pool_avoids_host_addresses() {
        let pref: IpNet = "192.168.0.0/16".parse().unwrap();
        let a = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(default_ipv4_pool(&[a("10.0.0.5/24")], pref), pref);
        assert_eq!(
            default_ipv4_pool(&[a("192.168.7.9/24")], pref),
            a("172.16.0.0/16")
        );
        assert_eq!(
            default_ipv4_pool(&[a("192.168.7.9/24"), a("172.16.0.1/16")], pref),
            a("172.17.0.0/16")
        );
        let all: Vec<IpNet> = (16..=31)
            .map(|i| a(&format!("172.{i}.0.1/16")))
            .chain([a("192.168.0.1/24")])
            .collect();
        assert_eq!(default_ipv4_pool(&all, pref), pref);
    }

    #[test]
    fn udp_source_towards_loopback() {
        // Connecting a UDP socket sends nothing; towards 127.0.0.1 the source is loopback.
        assert_eq!(
            udp_source_address("127.0.0.1", 4).unwrap(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert!(matches!(
            udp_source_address("127.0.0.1", 6),
            Err(AutodetectError::Reach { .. })
        ));
    }
}
