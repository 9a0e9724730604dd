//! Set and map element changes as data ([`diff_ops`]), so a driver can send the most
//! frequent change of all — IP-set membership, which follows every pod start and stop in the
//! cluster — straight to the kernel as nf_tables set-element messages instead of through an
//! `nft` process (which first loads its cache of the whole table: ~100 ms at 10k policies).
//!
//! The typed [`Element`] is read back from the text this crate renders (the set's declaration
//! fixes how): `10.0.0.1` (`type ipv4_addr;`), `10.0.0.0/24` (`flags interval;`),
//! `10.0.0.1 . tcp . 80` (`ipv4_addr . inet_proto . inet_service`), `tcp . 22`
//! (`inet_proto . inet_service`), `"cali1" : goto tw-cali1` (`ifname : verdict`). An element
//! this module cannot type stays in the script, so [`NftChange`] always describes the whole
//! change.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ruleset::Ruleset;

/// A verdict stored in a verdict map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
}

/// One element, typed by its set's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// `type ipv4_addr;` / `type ipv6_addr;` (hash sets `a4-…` / `a6-…`).
    Addr(IpAddr),
    /// `flags interval;` (`n4-…` / `n6-…`): the kernel stores a start element and, unless the
    /// range ends at the top of the address space, an end element one past its last address.
    Net(IpNet),
    /// `ipvX_addr . inet_proto . inet_service` (`p4-…` / `p6-…`).
    AddrProtoPort {
        addr: IpAddr,
        protocol: u8,
        port: u16,
    },
    /// `inet_proto . inet_service` (the failsafe sets).
    ProtoPort { protocol: u8, port: u16 },
    /// `ifname : verdict` (the dispatch maps).
    IfaceVerdict { iface: String, verdict: Verdict },
}

/// Adding or deleting one element of one named set or map of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementOp {
    /// The set's (or map's) name.
    pub set: String,
    /// `true`: add; `false`: delete.
    pub add: bool,
    /// The element as nft writes it in `add element` (`10.0.0.1`, `"cali1" : goto tw-cali1`).
    pub element: String,
    /// The same element, typed.
    pub value: Element,
}

impl ElementOp {
    /// The text inside `{ }` of the nft command: the whole element for an add, only the key
    /// for a map entry's delete (nft deletes map entries by key).
    pub fn nft_text(&self) -> &str {
        match (&self.value, self.add) {
            (Element::IfaceVerdict { .. }, false) => self
                .element
                .split_once(" : ")
                .map_or(self.element.as_str(), |(k, _)| k),
            _ => &self.element,
        }
    }
}

/// The difference between two rulesets, split into element changes of sets and maps that
/// exist in both (`elements`) and everything else (`script`, as [`crate::diff`] renders it,
/// without those element commands). Both empty: nothing to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NftChange {
    /// The table the change applies to (family inet).
    pub table: String,
    /// Element deletes and adds, grouped per set in [`crate::diff`]'s order (sets by name,
    /// then maps by name; within each, deletions before additions).
    pub elements: Vec<ElementOp>,
    /// The rest of the change as an nft script; empty when only elements change.
    pub script: String,
}

impl NftChange {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty() && self.script.trim().is_empty()
    }

    /// Whether the change is element changes only (the fast path).
    pub fn elements_only(&self) -> bool {
        self.script.trim().is_empty()
    }

    /// The whole change as one nft script (one transaction): element deletions first (so a
    /// map entry stops referencing a chain before the script deletes that chain), then the
    /// script, then element additions (so a map entry's target chain already exists). The
    /// result equals applying [`crate::diff`].
    pub fn render(&self) -> String {
        let deletes: Vec<ElementOp> = self.elements.iter().filter(|o| !o.add).cloned().collect();
        let adds: Vec<ElementOp> = self.elements.iter().filter(|o| o.add).cloned().collect();
        let mut out = render_elements(&self.table, &deletes);
        out.push_str(&self.script);
        out.push_str(&render_elements(&self.table, &adds));
        out
    }
}

/// `ops` as nft commands, one `add element` / `delete element` per run of consecutive ops on
/// the same set with the same verb, in order. For [`NftChange::elements`] this is exactly
/// what [`crate::diff`] writes for those element changes.
pub fn render_elements(table: &str, ops: &[ElementOp]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ops.len() {
        let (set, add) = (&ops[i].set, ops[i].add);
        let mut j = i;
        while j < ops.len() && ops[j].set == *set && ops[j].add == add {
            j += 1;
        }
        let verb = if add { "add" } else { "delete" };
        let _ = write!(out, "{verb} element inet {table} {set} {{ ");
        for (k, op) in ops[i..j].iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            out.push_str(op.nft_text());
        }
        out.push_str(" }\n");
        i = j;
    }
    out
}

/// [`crate::diff`], with the element changes of sets and maps present in both rulesets
/// (same declaration) taken out as [`ElementOp`]s where they can be typed.
pub fn diff_ops(old: &Ruleset, new: &Ruleset) -> NftChange {
    let mut elements = Vec::new();
    let script = crate::diff::diff_into(old, new, Some(&mut elements));
    NftChange {
        table: new.table.clone(),
        elements,
        script,
    }
}

/// How a declaration's elements are typed, `None` for a declaration this module does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElementKind {
    Addr(u8),
    Net(u8),
    AddrProtoPort(u8),
    ProtoPort,
    IfaceVerdict,
}

impl ElementKind {
    /// From a set's or map's declaration as [`crate::compile`] writes it.
    pub(crate) fn of_spec(spec: &str) -> Option<ElementKind> {
        Some(match spec {
            "type ipv4_addr;" => ElementKind::Addr(4),
            "type ipv6_addr;" => ElementKind::Addr(6),
            "type ipv4_addr; flags interval;" => ElementKind::Net(4),
            "type ipv6_addr; flags interval;" => ElementKind::Net(6),
            "type ipv4_addr . inet_proto . inet_service;" => ElementKind::AddrProtoPort(4),
            "type ipv6_addr . inet_proto . inet_service;" => ElementKind::AddrProtoPort(6),
            "type inet_proto . inet_service;" => ElementKind::ProtoPort,
            "type ifname : verdict;" => ElementKind::IfaceVerdict,
            _ => return None,
        })
    }

    /// Types one element (`key` and, for maps, the verdict text); `None` when the text is not
    /// what this kind renders.
    pub(crate) fn parse(self, key: &str, data: Option<&str>) -> Option<Element> {
        let family_ok =
            |a: &IpAddr, fam: u8| (a.is_ipv4() && fam == 4) || (a.is_ipv6() && fam == 6);
        match self {
            ElementKind::Addr(fam) => {
                let a: IpAddr = key.parse().ok()?;
                family_ok(&a, fam).then_some(Element::Addr(a))
            }
            ElementKind::Net(fam) => {
                let n: IpNet = match key.parse::<IpNet>() {
                    Ok(n) => n,
                    Err(_) => IpNet::from(key.parse::<IpAddr>().ok()?),
                };
                // Only what `net_text` renders: network addresses, host routes bare.
                (family_ok(&n.addr(), fam) && n.trunc() == n).then_some(Element::Net(n))
            }
            ElementKind::AddrProtoPort(fam) => {
                let mut parts = key.split(" . ");
                let addr: IpAddr = parts.next()?.parse().ok()?;
                let protocol = proto_number(parts.next()?)?;
                let port = parts.next()?.parse().ok()?;
                (parts.next().is_none() && family_ok(&addr, fam)).then_some(
                    Element::AddrProtoPort {
                        addr,
                        protocol,
                        port,
                    },
                )
            }
            ElementKind::ProtoPort => {
                let (p, port) = key.split_once(" . ")?;
                Some(Element::ProtoPort {
                    protocol: proto_number(p)?,
                    port: port.parse().ok()?,
                })
            }
            ElementKind::IfaceVerdict => {
                let iface = key.strip_prefix('"')?.strip_suffix('"')?;
                if iface.is_empty() || iface.len() > 15 || iface.contains('"') {
                    return None;
                }
                let verdict = match data?.split_once(' ') {
                    None => match data? {
                        "accept" => Verdict::Accept,
                        "drop" => Verdict::Drop,
                        "return" => Verdict::Return,
                        _ => return None,
                    },
                    Some(("goto", chain)) => Verdict::Goto(chain.to_string()),
                    Some(("jump", chain)) => Verdict::Jump(chain.to_string()),
                    Some(_) => return None,
                };
                Some(Element::IfaceVerdict {
                    iface: iface.to_string(),
                    verdict,
                })
            }
        }
    }
}

/// The inverse of the compiler's protocol names (`tcp`, `udp`, …, or a number).
fn proto_number(s: &str) -> Option<u8> {
    Some(match s {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "icmpv6" => 58,
        "sctp" => 132,
        "udplite" => 136,
        n => n.parse().ok()?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn typed_from_rendered_text() {
        let k = |s| ElementKind::of_spec(s).unwrap();
        assert_eq!(
            k("type ipv4_addr;").parse("10.0.0.1", None),
            Some(Element::Addr("10.0.0.1".parse().unwrap()))
        );
        assert_eq!(k("type ipv4_addr;").parse("fd00::1", None), None);
        let net = k("type ipv6_addr; flags interval;");
        assert_eq!(
            net.parse("fd00::/64", None),
            Some(Element::Net("fd00::/64".parse().unwrap()))
        );
        assert_eq!(
            net.parse("fd00::1", None),
            Some(Element::Net("fd00::1/128".parse().unwrap()))
        );
        assert_eq!(net.parse("fd00::1/64", None), None, "not a network address");
        assert_eq!(
            k("type ipv4_addr . inet_proto . inet_service;").parse("10.0.0.1 . tcp . 80", None),
            Some(Element::AddrProtoPort {
                addr: "10.0.0.1".parse().unwrap(),
                protocol: 6,
                port: 80
            })
        );
        assert_eq!(
            k("type ipv4_addr . inet_proto . inet_service;").parse("10.0.0.1 . 99 . 7", None),
            Some(Element::AddrProtoPort {
                addr: "10.0.0.1".parse().unwrap(),
                protocol: 99,
                port: 7
            })
        );
        assert_eq!(
            k("type inet_proto . inet_service;").parse("udp . 53", None),
            Some(Element::ProtoPort {
                protocol: 17,
                port: 53
            })
        );
        let map = k("type ifname : verdict;");
        assert_eq!(
            map.parse("\"cali1\"", Some("goto tw-cali1")),
            Some(Element::IfaceVerdict {
                iface: "cali1".into(),
                verdict: Verdict::Goto("tw-cali1".into())
            })
        );
        assert_eq!(map.parse("\"cali1\"", Some("continue")), None);
        assert_eq!(map.parse("cali1", Some("drop")), None, "unquoted");
        assert_eq!(ElementKind::of_spec("type mark;"), None);
    }

    #[test]
    fn map_deletes_render_the_key_only() {
        let op = ElementOp {
            set: "to-wl".into(),
            add: false,
            element: "\"cali1\" : goto tw-cali1".into(),
            value: Element::IfaceVerdict {
                iface: "cali1".into(),
                verdict: Verdict::Goto("tw-cali1".into()),
            },
        };
        assert_eq!(
            render_elements("calico", std::slice::from_ref(&op)),
            "delete element inet calico to-wl { \"cali1\" }\n"
        );
        let add = ElementOp { add: true, ..op };
        assert_eq!(
            render_elements("calico", &[add]),
            "add element inet calico to-wl { \"cali1\" : goto tw-cali1 }\n"
        );
    }
}
