//! The default IP pools calico-node creates when none exists (`configureIPPools` and
//! `createIPPool` in `node/pkg/lifecycle/startup/startup.go`), from `CALICO_IPV4POOL_*`,
//! `CALICO_IPV6POOL_*` and `NO_DEFAULT_POOLS`. Everything is validated here, before start-up
//! writes anything, so a bad variable never leaves a half-configured node behind.

use calico_api::CalicoResource;
use calico_api::ippool::{IPPool, IPPoolSpec};
use ipnet::IpNet;

use super::{ConfigError, Environment};

/// Calico's defaults (`startup.go`).
pub const DEFAULT_IPV4_POOL_CIDR: &str = "192.168.0.0/16";
pub const DEFAULT_IPV4_POOL_BLOCK_SIZE: u8 = 26;
pub const DEFAULT_IPV6_POOL_BLOCK_SIZE: u8 = 122;
pub const DEFAULT_IPV4_POOL_NAME: &str = "default-ipv4-ippool";
pub const DEFAULT_IPV6_POOL_NAME: &str = "default-ipv6-ippool";

/// One default pool to create if its family has no pool yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// `None`: chosen at start-up (IPv4: 192.168.0.0/16 unless a host address is inside it,
    /// then the first free 172.16–31.0.0/16; IPv6: a random ULA /48, RFC 4193).
    pub cidr: Option<IpNet>,
    pub block_size: u8,
    /// `Never`, `Always` or `CrossSubnet` (IPv6 is always `Never`).
    pub ipip_mode: String,
    pub vxlan_mode: String,
    pub nat_outgoing: bool,
    pub node_selector: String,
    pub disable_bgp_export: bool,
}

impl PoolSettings {
    /// The IPPool resource for `cidr` (this pool's CIDR once chosen).
    pub fn to_ippool(&self, name: &str, cidr: IpNet) -> IPPool {
        IPPool {
            metadata: calico_api::ObjectMeta {
                name: name.to_string(),
                ..Default::default()
            },
            spec: IPPoolSpec {
                cidr: cidr.trunc().to_string(),
                vxlan_mode: self.vxlan_mode.clone(),
                ipip_mode: self.ipip_mode.clone(),
                nat_outgoing: self.nat_outgoing,
                disable_bgp_export: self.disable_bgp_export,
                block_size: i64::from(self.block_size),
                node_selector: self.node_selector.clone(),
                ..Default::default()
            },
            status: None,
        }
    }
}

/// What to do about default pools.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DefaultPools {
    /// `NO_DEFAULT_POOLS=true`: create none.
    pub disabled: bool,
    /// `None` when `CALICO_IPV4POOL_CIDR=none` (or all pools disabled).
    pub ipv4: Option<PoolSettings>,
    /// `None` when `CALICO_IPV6POOL_CIDR=none`. Created only where IPv6 is supported
    /// (`FELIX_IPV6SUPPORT` and `/proc/sys/net/ipv6`), as Calico does.
    pub ipv6: Option<PoolSettings>,
}

/// Calico's `evaluateENVBool`, except that a value that is neither a true nor a false word is
/// refused (Calico takes any other value as true).
fn env_bool(env: &dyn Environment, var: &str, default: bool) -> Result<bool, ConfigError> {
    match env.var(var) {
        None => Ok(default),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "false" | "0" | "no" | "n" | "f" => Ok(false),
            "true" | "1" | "yes" | "y" | "t" => Ok(true),
            _ => Err(ConfigError::invalid(
                var,
                &v,
                "expected true or false (also 1/0, yes/no, y/n, t/f)",
            )),
        },
    }
}

/// `createIPPool`'s mode parsing: case-insensitive `""/off/never`, `crosssubnet/cross-subnet`,
/// `always`.
fn encap_mode(var: &str, raw: &str) -> Result<String, ConfigError> {
    match raw.to_ascii_lowercase().as_str() {
        "" | "off" | "never" => Ok("Never".into()),
        "crosssubnet" | "cross-subnet" => Ok("CrossSubnet".into()),
        "always" => Ok("Always".into()),
        _ => Err(ConfigError::invalid(
            var,
            raw,
            "unrecognized mode; expected Always, CrossSubnet or Never",
        )),
    }
}

fn block_size(env: &dyn Environment, var: &str, version: u8) -> Result<u8, ConfigError> {
    let (default, lo, hi) = if version == 4 {
        (DEFAULT_IPV4_POOL_BLOCK_SIZE, 20, 32)
    } else {
        (DEFAULT_IPV6_POOL_BLOCK_SIZE, 116, 128)
    };
    let Some(raw) = env.var(var).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    // Go's strconv.Atoi: optional sign, decimal digits.
    let n: i64 = raw
        .parse()
        .map_err(|_| ConfigError::invalid(var, &raw, "not an integer"))?;
    if n < i64::from(lo) || n > i64::from(hi) {
        return Err(ConfigError::invalid(
            var,
            &raw,
            format!("invalid block size {n} for IPv{version}: must be {lo} to {hi}"),
        ));
    }
    Ok(n as u8)
}

fn cidr(var: &str, raw: &str, version: u8) -> Result<IpNet, ConfigError> {
    // cnet.ParseCIDR: an address/prefix; the host bits are masked off.
    let net: IpNet = raw
        .parse()
        .map_err(|_| ConfigError::invalid(var, raw, format!("invalid CIDR specified in {var}")))?;
    let v = if matches!(net, IpNet::V4(_)) { 4 } else { 6 };
    if v != version {
        return Err(ConfigError::invalid(
            var,
            raw,
            format!("not an IPv{version} CIDR"),
        ));
    }
    Ok(net.trunc())
}

fn one_family(
    env: &dyn Environment,
    version: u8,
    cidr_raw: Option<String>,
) -> Result<PoolSettings, ConfigError> {
    let p = format!("CALICO_IPV{version}POOL_");
    let v = |s: &str| format!("{p}{s}");
    let block_size = block_size(env, &v("BLOCK_SIZE"), version)?;
    let node_selector = env.var(&v("NODE_SELECTOR")).unwrap_or_default();
    calico_selector::parse(&node_selector)
        .map_err(|e| ConfigError::invalid(&v("NODE_SELECTOR"), &node_selector, e.to_string()))?;
    let cidr = match cidr_raw.filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => Some(cidr(&v("CIDR"), &raw, version)?),
    };
    let ipip_mode = if version == 4 {
        encap_mode(&v("IPIP"), &env.var(&v("IPIP")).unwrap_or_default())?
    } else {
        "Never".to_string()
    };
    let vxlan_mode = encap_mode(&v("VXLAN"), &env.var(&v("VXLAN")).unwrap_or_default())?;
    let settings = PoolSettings {
        cidr,
        block_size,
        ipip_mode,
        vxlan_mode,
        // NAT outgoing defaults on for IPv4 and off for IPv6.
        nat_outgoing: env_bool(env, &v("NAT_OUTGOING"), version == 4)?,
        node_selector,
        disable_bgp_export: env_bool(env, &v("DISABLE_BGP_EXPORT"), false)?,
    };
    // Calico's IPPool validation (block size vs. CIDR, IPIP and VXLAN together, ...) now,
    // naming the variables, instead of failing the create after the Node was written.
    let probe_cidr = settings.cidr.unwrap_or_else(|| {
        if version == 4 {
            DEFAULT_IPV4_POOL_CIDR
                .parse()
                .unwrap_or(IpNet::V4(Default::default()))
        } else {
            // Any /48 stands for the random ULA prefix chosen at start-up.
            "fd00::/48".parse().unwrap_or(IpNet::V6(Default::default()))
        }
    });
    let mut pool = settings.to_ippool("probe", probe_cidr);
    pool.apply_defaults();
    let mut errs = calico_api::FieldErrors::default();
    pool.validate(&mut errs);
    if let Some(e) = errs.iter().next() {
        let vars = match e.path.as_str() {
            "spec.blockSize" | "spec.cidr" => vec![v("CIDR"), v("BLOCK_SIZE")],
            "spec.ipipMode" | "spec.vxlanMode" => vec![v("IPIP"), v("VXLAN")],
            "spec.nodeSelector" => vec![v("NODE_SELECTOR")],
            _ => vec![v("CIDR"), v("BLOCK_SIZE"), v("IPIP"), v("VXLAN")],
        };
        return Err(ConfigError::Other(format!(
            "invalid default IPv{version} pool from {}: {e}",
            vars.join(" / ")
        )));
    }
    Ok(settings)
}

impl DefaultPools {
    /// Reads and validates the pool variables.
    pub fn from_env(env: &dyn Environment) -> Result<DefaultPools, ConfigError> {
        let v4 = env.var("CALICO_IPV4POOL_CIDR").unwrap_or_default();
        let v6 = env.var("CALICO_IPV6POOL_CIDR").unwrap_or_default();
        if env
            .var("NO_DEFAULT_POOLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            if !v4.is_empty() || !v6.is_empty() {
                return Err(ConfigError::Other(
                    "Invalid configuration with NO_DEFAULT_POOLS defined and CALICO_IPV4POOL_CIDR \
                     or CALICO_IPV6POOL_CIDR defined."
                        .into(),
                ));
            }
            return Ok(DefaultPools {
                disabled: true,
                ipv4: None,
                ipv6: None,
            });
        }
        let ipv4 = if v4 == "none" {
            None
        } else {
            Some(one_family(env, 4, Some(v4))?)
        };
        let ipv6 = if v6 == "none" {
            None
        } else {
            Some(one_family(env, 6, Some(v6))?)
        };
        Ok(DefaultPools {
            disabled: false,
            ipv4,
            ipv6,
        })
    }
}
