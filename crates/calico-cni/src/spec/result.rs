//! The ADD success result (SPEC.md section 5) in one in-memory shape, and its JSON in every
//! version we speak, following libcni's converters (`pkg/types/{100,040,020}`):
//!
//! * 1.0.0 / 1.1.0: `interfaces` (`name`, `mac`, `mtu`, `sandbox`, `socketPath`, `pciID`),
//!   `ips` (`interface`, `address`, `gateway`), `routes`, `dns`; empty sections are left out.
//! * 0.3.0 / 0.3.1 / 0.4.0: interfaces lose `mtu`, `socketPath` and `pciID`; every IP gains
//!   `version` ("4" or "6"); `dns` is always printed (Go's `omitempty` does not drop a struct).
//! * 0.1.0 / 0.2.0: `ip4` / `ip6` with the first address of each family, each carrying the
//!   routes of its family (destination and gateway only); at least one address is required.
//!
//! Parsing accepts each of those shapes (a delegated IPAM plugin's output, or a `prevResult`),
//! using the result's own `cniVersion` and else the configuration's, as libcni's
//! `fixupResultVersion` does. Addresses keep their host bits (`10.1.0.5/16`), as Go's
//! `types.ParseCIDR` does.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{CniError, ErrorCode};
use super::version::{SUPPORTED_VERSIONS, SpecVersion};

/// An interface created by the attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub socket_path: String,
    #[serde(default, rename = "pciID", skip_serializing_if = "String::is_empty")]
    pub pci_id: String,
}

/// An address assigned by the attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Index into `interfaces` (absent in a delegated IPAM plugin's result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// A route created by the attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub advmss: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

impl Route {
    /// A route to `dst` with nothing else set.
    pub fn to(dst: IpNet) -> Route {
        Route {
            dst,
            gw: None,
            mtu: 0,
            advmss: 0,
            priority: 0,
            table: None,
            scope: None,
        }
    }
}

/// Resolver settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_empty()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// An ADD result, independent of the version it is printed in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

// ---- wire shapes -------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Wire1 {
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    dns: Dns,
}

#[derive(Serialize)]
struct Interface04<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mac: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    sandbox: &'a str,
}

#[derive(Serialize, Deserialize)]
struct IpConfig04 {
    #[serde(default)]
    version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
    address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
}

#[derive(Serialize)]
struct Wire04<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<Interface04<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ips: Vec<IpConfig04>,
    #[serde(skip_serializing_if = "<[Route]>::is_empty")]
    routes: &'a [Route],
    dns: &'a Dns,
}

#[derive(Deserialize)]
struct Wire04In {
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<IpConfig04>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    dns: Dns,
}

#[derive(Serialize, Deserialize)]
struct Route02 {
    dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gw: Option<IpAddr>,
}

#[derive(Serialize, Deserialize)]
struct IpConfig02 {
    ip: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route02>,
}

#[derive(Serialize, Deserialize)]
struct Wire02 {
    #[serde(rename = "cniVersion", default)]
    cni_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip4: Option<IpConfig02>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip6: Option<IpConfig02>,
    #[serde(default)]
    dns: Dns,
}

/// Which result shape a version uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    V02,
    V04,
    V1,
}

fn shape_of(version: &str) -> Result<Shape, CniError> {
    let v = SpecVersion::parse(version)?;
    Ok(if v < SpecVersion(0, 3, 0) {
        Shape::V02
    } else if v < SpecVersion(1, 0, 0) {
        Shape::V04
    } else {
        Shape::V1
    })
}

fn family(ip: &IpNet) -> &'static str {
    match ip {
        IpNet::V4(_) => "4",
        IpNet::V6(_) => "6",
    }
}

fn decode<T: serde::de::DeserializeOwned>(v: &Value, what: &str) -> Result<T, CniError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        CniError::decoding(format!(
            "failed to parse {what}: field {path}: {}",
            e.inner()
        ))
    })
}

impl CniResult {
    /// Parses a result in the shape of `version` (the result's own `cniVersion` wins when it
    /// has one). `what` names the document in errors ("prevResult", "IPAM plugin result").
    pub fn parse(v: &Value, version: &str, what: &str) -> Result<CniResult, CniError> {
        if !v.is_object() {
            return Err(CniError::decoding(format!(
                "failed to parse {what}: expected a JSON object, got {v}"
            )));
        }
        let own = v
            .get("cniVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let version = own.unwrap_or(version);
        match shape_of(version)? {
            Shape::V1 => {
                let w: Wire1 = decode(v, what)?;
                Ok(CniResult {
                    interfaces: w.interfaces,
                    ips: w.ips,
                    routes: w.routes,
                    dns: w.dns,
                })
            }
            Shape::V04 => {
                let w: Wire04In = decode(v, what)?;
                Ok(CniResult {
                    interfaces: w.interfaces,
                    ips: w
                        .ips
                        .into_iter()
                        .map(|ip| IpConfig {
                            interface: ip.interface,
                            address: ip.address,
                            gateway: ip.gateway,
                        })
                        .collect(),
                    routes: w.routes,
                    dns: w.dns,
                })
            }
            Shape::V02 => {
                let w: Wire02 = decode(v, what)?;
                let mut out = CniResult {
                    dns: w.dns,
                    ..Default::default()
                };
                for ipc in [w.ip4, w.ip6].into_iter().flatten() {
                    out.ips.push(IpConfig {
                        interface: None,
                        address: ipc.ip,
                        gateway: ipc.gateway,
                    });
                    out.routes.extend(ipc.routes.into_iter().map(|r| Route {
                        gw: r.gw,
                        ..Route::to(r.dst)
                    }));
                }
                Ok(out)
            }
        }
    }

    /// Parses the bytes a delegated plugin printed (libcni `ExecPluginWithResult`).
    pub fn parse_bytes(bytes: &[u8], version: &str, what: &str) -> Result<CniResult, CniError> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| CniError::decoding(format!("failed to parse {what}: {e}")))?;
        Self::parse(&v, version, what)
    }

    /// The result as printed for `version` (libcni `PrintResult` after `GetAsVersion`).
    pub fn to_json(&self, version: &str) -> Result<Value, CniError> {
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(CniError::new(
                ErrorCode::INCOMPATIBLE_VERSION,
                format!("cannot convert the result to unsupported version {version:?}"),
            ));
        }
        let v = match shape_of(version)? {
            Shape::V1 => serde_json::to_value(Wire1 {
                cni_version: version.to_string(),
                interfaces: self.interfaces.clone(),
                ips: self.ips.clone(),
                routes: self.routes.clone(),
                dns: self.dns.clone(),
            }),
            Shape::V04 => serde_json::to_value(Wire04 {
                cni_version: version,
                interfaces: self
                    .interfaces
                    .iter()
                    .map(|i| Interface04 {
                        name: &i.name,
                        mac: &i.mac,
                        sandbox: &i.sandbox,
                    })
                    .collect(),
                ips: self
                    .ips
                    .iter()
                    .map(|ip| IpConfig04 {
                        version: family(&ip.address).into(),
                        interface: ip.interface,
                        address: ip.address,
                        gateway: ip.gateway,
                    })
                    .collect(),
                routes: &self.routes,
                dns: &self.dns,
            }),
            Shape::V02 => serde_json::to_value(self.to_v02(version)?),
        };
        v.map_err(|e| CniError::internal(format!("failed to encode the result: {e}")))
    }

    /// libcni `convertTo02x`: the first address of each family, routes by destination family.
    fn to_v02(&self, version: &str) -> Result<Wire02, CniError> {
        let mut ip4: Option<IpConfig02> = None;
        let mut ip6: Option<IpConfig02> = None;
        for ip in &self.ips {
            let slot = match ip.address {
                IpNet::V4(_) => &mut ip4,
                IpNet::V6(_) => &mut ip6,
            };
            if slot.is_none() {
                *slot = Some(IpConfig02 {
                    ip: ip.address,
                    gateway: ip.gateway,
                    routes: Vec::new(),
                });
            }
        }
        for r in &self.routes {
            let slot = match r.dst {
                IpNet::V4(_) => ip4.as_mut(),
                IpNet::V6(_) => ip6.as_mut(),
            };
            if let Some(s) = slot {
                s.routes.push(Route02 {
                    dst: r.dst,
                    gw: r.gw,
                });
            }
        }
        if ip4.is_none() && ip6.is_none() {
            return Err(CniError::new(
                ErrorCode::INCOMPATIBLE_VERSION,
                format!("cannot convert the result to {version}: no valid IP addresses"),
            ));
        }
        Ok(Wire02 {
            cni_version: version.to_string(),
            ip4,
            ip6,
            dns: self.dns.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v02_requires_an_address() {
        let r = CniResult::default();
        let e = r.to_json("0.2.0").unwrap_err();
        assert!(e.msg.contains("no valid IP addresses"), "{e}");
        assert!(r.to_json("0.4.0").is_ok());
        assert_eq!(
            r.to_json("1.1.0").unwrap(),
            serde_json::json!({"cniVersion": "1.1.0"})
        );
        assert_eq!(
            r.to_json("0.4.0").unwrap(),
            serde_json::json!({"cniVersion": "0.4.0", "dns": {}})
        );
        assert_eq!(
            r.to_json("2.0.0").unwrap_err().code,
            ErrorCode::INCOMPATIBLE_VERSION
        );
    }

    #[test]
    fn parse_errors_name_the_field() {
        let v = serde_json::json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.300/32"}]});
        let e = CniResult::parse(&v, "1.0.0", "prevResult").unwrap_err();
        assert_eq!(e.code, ErrorCode::DECODING_FAILURE);
        assert!(e.msg.contains("prevResult"), "{e}");
        assert!(e.msg.contains("ips[0].address"), "{e}");
        let e = CniResult::parse(&serde_json::json!([1]), "1.0.0", "prevResult").unwrap_err();
        assert!(e.msg.contains("expected a JSON object"), "{e}");
    }

    #[test]
    fn own_version_wins_over_config_version() {
        // A 0.2.0-shaped IPAM result under a 1.0.0 config.
        let v = serde_json::json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24",
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]}});
        let r = CniResult::parse(&v, "1.0.0", "IPAM plugin result").unwrap();
        assert_eq!(r.ips.len(), 1);
        assert_eq!(r.ips[0].address.to_string(), "10.0.0.2/24");
        assert_eq!(r.routes[0].gw, Some("10.0.0.1".parse().unwrap()));
    }
}
