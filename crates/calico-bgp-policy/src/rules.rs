//! BGPFilter rules compiled once into matchers, and their evaluation the way BIRD runs the
//! functions confd renders (`BGPFilterBIRDFuncs` / `filterStatement` in
//! `confd/pkg/resource/template/template_funcs.go`).

use std::fmt;

use calico_api::bgpfilter::{BGPFilterOperation, BGPFilterRule};
use calico_bgp::rib::{DEFAULT_LOCAL_PREF, PeerType, PolicyResult, Route};
use calico_bgp_config::CommunityValue;
use calico_bgp_packet::{AsPath, Community, LargeCommunity, PathAttributes, SegmentType};
use ipnet::IpNet;

use crate::{BIRD_INT_MAX, PolicyError, add_community};

/// Which rule list of a BGPFilter a function renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleList {
    ImportV4,
    ExportV4,
    ImportV6,
    ExportV6,
}

impl RuleList {
    /// The field name in the BGPFilter spec.
    pub fn field(self) -> &'static str {
        match self {
            RuleList::ImportV4 => "importV4",
            RuleList::ExportV4 => "exportV4",
            RuleList::ImportV6 => "importV6",
            RuleList::ExportV6 => "exportV6",
        }
    }

    fn v6(self) -> bool {
        matches!(self, RuleList::ImportV6 | RuleList::ExportV6)
    }
}

impl fmt::Display for RuleList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// `matchOperator` → BIRD's `=`, `!=`, `~`, `!~` (confd's `operatorLUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CidrOp {
    Equal,
    NotEqual,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CidrMatch {
    net: IpNet,
    op: CidrOp,
    /// `prefixLength`: confd then compares with the prefix set `[ cidr{min,max} ]`, min
    /// raised to the CIDR's own length and max capped at the family's maximum.
    lengths: Option<(u8, u8)>,
}

impl CidrMatch {
    fn matches(&self, prefix: &IpNet) -> bool {
        match self.lengths {
            None => {
                let inside = self.net.contains(prefix);
                match self.op {
                    CidrOp::Equal => *prefix == self.net,
                    CidrOp::NotEqual => *prefix != self.net,
                    CidrOp::In => inside,
                    CidrOp::NotIn => !inside,
                }
            }
            Some((min, max)) => {
                let len = prefix.prefix_len();
                let in_set = self.net.contains(prefix) && (min..=max).contains(&len);
                match self.op {
                    CidrOp::In => in_set,
                    CidrOp::NotIn => !in_set,
                    // BIRD's `=`/`!=` between a prefix and a prefix set compares values of
                    // different types, which `val_same` reports as "not the same" without an
                    // error: `=` never holds and `!=` always does.
                    CidrOp::Equal => false,
                    CidrOp::NotEqual => true,
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerTypeGuard {
    Any,
    /// `if (is_same_as) then { … }`
    Ibgp,
    /// `if (!is_same_as) then { … }`
    Ebgp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Accept,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// `bgp_community.add(..)` / `bgp_large_community.add(..)`.
    AddCommunity(CommunityValue),
    /// One `bgp_path.prepend(asn)` per ASN, in the given (already reversed) order.
    Prepend(Vec<u32>),
    /// `bgp_local_pref = 2147483647 - priority`.
    SetLocalPref(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    guard: PeerTypeGuard,
    cidr: Option<CidrMatch>,
    /// `source: RemotePeers` → `source ~ [ RTS_BGP ]`.
    remote_peers: bool,
    /// `interface`: `(defined(ifname))&&(ifname ~ "<glob>")`. Our routes carry no interface,
    /// which BIRD shows as the empty name (as for its blackhole routes): only a glob made of
    /// `*` alone matches it. `None` when the rule has no interface condition.
    interface: Option<bool>,
    community: Option<CommunityValue>,
    as_path_prefix: Vec<u32>,
    /// `priority` → `(defined(bgp_local_pref)&&(bgp_local_pref = 2147483647 - priority))`.
    local_pref_eq: Option<u32>,
    action: Action,
    ops: Vec<Op>,
}

/// What a filter function did with a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A rule matched and accepted (the filter ends here).
    Accept,
    /// A rule matched and rejected (the filter ends here).
    Reject,
    /// No rule matched; the caller goes on with the next statement.
    NoMatch,
}

/// One rendered BGPFilter function (`bgp_<name>_importFilterV4` …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledFilter {
    pub name: String,
    pub list: RuleList,
    rules: Vec<Rule>,
}

/// A route under evaluation: the original attributes until a statement changes them
/// (copy-on-write, so the common accept-unchanged case allocates nothing).
pub(crate) struct Working<'a> {
    pub route: &'a Route,
    modified: Option<PathAttributes>,
}

impl<'a> Working<'a> {
    pub fn new(route: &'a Route) -> Self {
        Working {
            route,
            modified: None,
        }
    }

    pub fn attrs(&self) -> &PathAttributes {
        self.modified.as_ref().unwrap_or(&self.route.attrs)
    }

    pub fn attrs_mut(&mut self) -> &mut PathAttributes {
        let route = self.route;
        self.modified.get_or_insert_with(|| (*route.attrs).clone())
    }

    /// LOCAL_PREF as BIRD's `bgp_local_pref` sees it: BIRD attaches `default bgp_local_pref`
    /// (100) to every received route that lacks one, and the export prologue sets it for local
    /// routes.
    pub fn local_pref(&self) -> u32 {
        self.attrs().local_pref.unwrap_or(DEFAULT_LOCAL_PREF)
    }

    pub fn set_local_pref(&mut self, lp: u32) {
        if self.attrs().local_pref != Some(lp) {
            self.attrs_mut().local_pref = Some(lp);
        }
    }

    pub fn add_community(&mut self, c: CommunityValue) {
        let present = match c {
            CommunityValue::Standard(a, b) => self
                .attrs()
                .communities
                .contains(&Community((a << 16) | (b & 0xffff))),
            CommunityValue::Large(g, l1, l2) => {
                self.attrs().large_communities.contains(&LargeCommunity {
                    global_admin: g,
                    local_data1: l1,
                    local_data2: l2,
                })
            }
        };
        if !present {
            let a = self.attrs_mut();
            add_community(&mut a.communities, &mut a.large_communities, c);
        }
    }

    pub fn into_result(self, action: Action) -> PolicyResult {
        match (action, self.modified) {
            (Action::Reject, _) => PolicyResult::Reject,
            (Action::Accept, None) => PolicyResult::Accept,
            (Action::Accept, Some(a)) if a == *self.route.attrs => PolicyResult::Accept,
            (Action::Accept, Some(a)) => PolicyResult::Modify(a),
        }
    }
}

fn bad(filter: &str, list: RuleList, index: usize, reason: impl Into<String>) -> PolicyError {
    PolicyError::BadRule {
        filter: filter.to_string(),
        list: list.field(),
        index,
        reason: reason.into(),
    }
}

/// `aa:nn` (16-bit parts) or `aa:nn:mm` (32-bit parts), as BIRD's pair / lc literals demand.
pub(crate) fn parse_community(v: &str) -> Result<CommunityValue, String> {
    let parts: Vec<&str> = v.split(':').collect();
    let num = |s: &str, max: u32| -> Result<u32, String> {
        s.parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("community {v:?}: part {s:?} is not a number in 0..={max}"))
    };
    match parts.as_slice() {
        [a, b] => Ok(CommunityValue::Standard(
            num(a, u32::from(u16::MAX))?,
            num(b, u32::from(u16::MAX))?,
        )),
        [a, b, c] => Ok(CommunityValue::Large(
            num(a, u32::MAX)?,
            num(b, u32::MAX)?,
            num(c, u32::MAX)?,
        )),
        _ => Err(format!("community {v:?} is neither aa:nn nor aa:nn:mm")),
    }
}

fn priority_to_local_pref(p: i64) -> Option<u32> {
    u32::try_from(p)
        .ok()
        .filter(|p| *p <= BIRD_INT_MAX)
        .map(|p| BIRD_INT_MAX - p)
}

impl CompiledFilter {
    pub fn compile(
        name: &str,
        list: RuleList,
        rules: &[BGPFilterRule],
    ) -> Result<CompiledFilter, PolicyError> {
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(i, r)| compile_rule(name, list, i, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompiledFilter {
            name: name.to_string(),
            list,
            rules: compiled,
        })
    }

    /// Runs the function: the first matching rule applies its operations and ends the filter
    /// with its action. `internal` is the `is_same_as` argument (peer AS = our AS).
    pub fn run(&self, w: &mut Working<'_>, internal: bool) -> Verdict {
        for r in &self.rules {
            if !r.matches(w, internal) {
                continue;
            }
            for op in &r.ops {
                match op {
                    Op::AddCommunity(c) => w.add_community(*c),
                    Op::Prepend(asns) => {
                        let a = w.attrs_mut();
                        let path = a.as_path.get_or_insert_with(AsPath::default);
                        for asn in asns {
                            path.prepend(*asn);
                        }
                    }
                    Op::SetLocalPref(lp) => w.set_local_pref(*lp),
                }
            }
            return match r.action {
                Action::Accept => Verdict::Accept,
                Action::Reject => Verdict::Reject,
            };
        }
        Verdict::NoMatch
    }
}

fn compile_rule(
    name: &str,
    list: RuleList,
    i: usize,
    r: &BGPFilterRule,
) -> Result<Rule, PolicyError> {
    let action = match r.action.as_str() {
        "Accept" => Action::Accept,
        "Reject" => Action::Reject,
        other => {
            return Err(bad(
                name,
                list,
                i,
                format!("action {other:?} is neither Accept nor Reject"),
            ));
        }
    };
    let guard = match r.peer_type.as_str() {
        "" => PeerTypeGuard::Any,
        "iBGP" => PeerTypeGuard::Ibgp,
        "eBGP" => PeerTypeGuard::Ebgp,
        other => {
            return Err(bad(
                name,
                list,
                i,
                format!("peerType {other:?} is neither iBGP nor eBGP"),
            ));
        }
    };
    // confd renders a CIDR condition only when `cidr` is set; `matchOperator` and
    // `prefixLength` without a CIDR are ignored.
    let cidr = if r.cidr.is_empty() {
        None
    } else {
        let op = match r.match_operator.as_str() {
            "Equal" => CidrOp::Equal,
            "NotEqual" => CidrOp::NotEqual,
            "In" => CidrOp::In,
            "NotIn" => CidrOp::NotIn,
            "" => return Err(bad(name, list, i, "cidr is set without matchOperator")),
            other => {
                return Err(bad(
                    name,
                    list,
                    i,
                    format!("matchOperator {other:?} is not Equal, NotEqual, In or NotIn"),
                ));
            }
        };
        let parsed = calico_api::netutil::parse_cidr(&r.cidr)
            .ok_or_else(|| bad(name, list, i, format!("cidr {:?} is not a CIDR", r.cidr)))?;
        let net = parsed.network();
        if !parsed.is_masked() {
            // BIRD refuses a prefix literal with host bits set.
            return Err(bad(
                name,
                list,
                i,
                format!("cidr {:?} has host bits set (use {net})", r.cidr),
            ));
        }
        if net.addr().is_ipv6() != list.v6() {
            return Err(bad(
                name,
                list,
                i,
                format!("cidr {:?} is not of the list's address family", r.cidr),
            ));
        }
        let lengths = match &r.prefix_length {
            None => None,
            Some(pl) => {
                let family_max: i64 = if list.v6() { 128 } else { 32 };
                let lo = i64::from(net.prefix_len()).max(pl.min.map_or(i64::MIN, i64::from));
                let hi = family_max.min(pl.max.map_or(i64::MAX, i64::from));
                // BIRD: "Invalid prefix pattern range" unless 0 <= min <= max <= family max.
                match (u8::try_from(lo), u8::try_from(hi)) {
                    (Ok(lo), Ok(hi)) if lo <= hi => Some((lo, hi)),
                    _ => {
                        return Err(bad(
                            name,
                            list,
                            i,
                            format!("prefixLength gives the empty range {{{lo},{hi}}} for {net}"),
                        ));
                    }
                }
            }
        };
        Some(CidrMatch { net, op, lengths })
    };
    let remote_peers = match r.source.as_str() {
        "" => false,
        "RemotePeers" => true,
        other => {
            return Err(bad(
                name,
                list,
                i,
                format!("source {other:?} is not RemotePeers"),
            ));
        }
    };
    let community = match &r.communities {
        None => None,
        Some(c) => {
            let v = c
                .values
                .first()
                .ok_or_else(|| bad(name, list, i, "communities.values is empty"))?;
            Some(parse_community(v).map_err(|e| bad(name, list, i, e))?)
        }
    };
    let local_pref_eq = match r.priority {
        None => None,
        Some(p) => Some(priority_to_local_pref(p).ok_or_else(|| {
            bad(
                name,
                list,
                i,
                format!("priority {p} is outside 0..=2147483647"),
            )
        })?),
    };
    let ops = r
        .operations
        .iter()
        .enumerate()
        .map(|(j, op)| {
            compile_op(op).map_err(|e| bad(name, list, i, format!("operations[{j}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rule {
        guard,
        cidr,
        remote_peers,
        interface: (!r.interface.is_empty()).then(|| r.interface.chars().all(|c| c == '*')),
        community,
        as_path_prefix: r.as_path_prefix.iter().map(|a| a.0).collect(),
        local_pref_eq,
        action,
        ops,
    })
}

fn compile_op(op: &BGPFilterOperation) -> Result<Op, String> {
    // confd checks the fields in this order and renders the first one set.
    if let Some(ac) = &op.add_community {
        let v = ac.value.as_deref().ok_or("addCommunity has no value")?;
        return Ok(Op::AddCommunity(parse_community(v)?));
    }
    if let Some(pp) = &op.prepend_as_path {
        // BIRD prepends one AS at a time, so confd emits them last-first; the first listed AS
        // ends up leftmost.
        return Ok(Op::Prepend(pp.prefix.iter().rev().map(|a| a.0).collect()));
    }
    if let Some(sp) = &op.set_priority {
        let p = sp.value.ok_or("setPriority has no value")?;
        let lp = priority_to_local_pref(p)
            .ok_or_else(|| format!("setPriority {p} is outside 0..=2147483647"))?;
        return Ok(Op::SetLocalPref(lp));
    }
    Err("no operation set (one of addCommunity, prependASPath, setPriority)".to_string())
}

impl Rule {
    fn matches(&self, w: &Working<'_>, internal: bool) -> bool {
        let guard_ok = match self.guard {
            PeerTypeGuard::Any => true,
            PeerTypeGuard::Ibgp => internal,
            PeerTypeGuard::Ebgp => !internal,
        };
        if !guard_ok || self.interface == Some(false) {
            return false;
        }
        if let Some(c) = &self.cidr
            && !c.matches(&w.route.prefix)
        {
            return false;
        }
        if self.remote_peers && w.route.source.peer_type == PeerType::Local {
            return false;
        }
        let attrs = w.attrs();
        if let Some(c) = self.community {
            let has = match c {
                CommunityValue::Standard(a, b) => attrs
                    .communities
                    .contains(&Community((a << 16) | (b & 0xffff))),
                CommunityValue::Large(g, l1, l2) => {
                    attrs.large_communities.contains(&LargeCommunity {
                        global_admin: g,
                        local_data1: l1,
                        local_data2: l2,
                    })
                }
            };
            if !has {
                return false;
            }
        }
        if !self.as_path_prefix.is_empty()
            && !as_path_starts_with(attrs.as_path.as_ref(), &self.as_path_prefix)
        {
            return false;
        }
        if let Some(lp) = self.local_pref_eq
            && w.local_pref() != lp
        {
            return false;
        }
        true
    }
}

/// BIRD's `bgp_path ~ [= a b * =]`: the path's first positions are `a`, `b`, … and anything
/// may follow. An AS_SET (or confederation set) is one position matched by any member, as in
/// BIRD's `as_path_match`.
pub(crate) fn as_path_starts_with(path: Option<&AsPath>, prefix: &[u32]) -> bool {
    let mut want = prefix.iter();
    let Some(path) = path else {
        return prefix.is_empty();
    };
    for seg in &path.segments {
        match seg.kind {
            SegmentType::Sequence | SegmentType::ConfedSequence => {
                for asn in &seg.asns {
                    match want.next() {
                        None => return true,
                        Some(w) if w == asn => {}
                        Some(_) => return false,
                    }
                }
            }
            SegmentType::Set | SegmentType::ConfedSet => match want.next() {
                None => return true,
                Some(w) if seg.asns.contains(w) => {}
                Some(_) => return false,
            },
        }
    }
    want.next().is_none()
}
