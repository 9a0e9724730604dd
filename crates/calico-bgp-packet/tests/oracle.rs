//! Differential test against an independent implementation, `netgauze-bgp-pkt` 0.13
//! (Apache-2.0, dev-dependency only): every message we encode must parse with netgauze in
//! the same negotiated context, netgauze's re-encoding of it must decode with our decoder to
//! the same message, and in most cases the two encodings are byte-identical.

#![allow(clippy::unwrap_used)]

mod strategies;

use std::collections::HashMap;

use calico_bgp_packet::*;
use netgauze_bgp_pkt::BgpMessage;
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_parse_utils::WritablePdu;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;
use proptest::prelude::*;
use strategies::*;

fn netgauze_ctx(c: &CodecContext) -> BgpParsingContext {
    use netgauze_iana::address_family::AddressType;
    let mut add_path = HashMap::new();
    add_path.insert(AddressType::Ipv4Unicast, c.add_path_ipv4);
    add_path.insert(AddressType::Ipv6Unicast, c.add_path_ipv6);
    BgpParsingContext::new(
        c.four_octet_as,
        HashMap::new(),
        add_path,
        true,
        true,
        true,
        true,
    )
}

/// Parses with netgauze; returns its re-encoding.
fn through_netgauze(bytes: &[u8], c: &CodecContext) -> Result<Vec<u8>, String> {
    let mut cur = SliceReader::new(bytes);
    let msg = BgpMessage::parse(&mut cur, &mut netgauze_ctx(c)).map_err(|e| format!("{e}"))?;
    if !cur.is_empty() {
        return Err(format!("netgauze left {} octets unread", cur.remaining()));
    }
    let mut out = Vec::new();
    msg.write(&mut out).map_err(|e| format!("{e}"))?;
    Ok(out)
}

/// Only what both implementations model: unicast MP families, capabilities netgauze does
/// not interpret differently.
fn comparable(m: &Message) -> bool {
    match m {
        Message::Update(u) => {
            // netgauze refuses multicast networks in unicast NLRI (its choice, not an RFC
            // rule), so those are left to the round-trip tests.
            u.announced()
                .chain(u.withdrawn_routes())
                .all(|(_, n)| !n.prefix.addr().is_multicast())
                // netgauze does not parse confederation segments (RFC 5065).
                && u.attributes.as_path.as_ref().is_none_or(|p| p.segments.iter().all(|s| !s.kind.is_confed()))
                && u.mp_reach.as_ref().is_none_or(|r| r.family.is_unicast_ip())
                && u.mp_unreach.as_ref().is_none_or(|r| r.family.is_unicast_ip())
        }
        // netgauze keeps RFC 4271's "unicast address" rule for the BGP identifier; we follow
        // RFC 6286 §2.2 (any non-zero value), so multicast-looking identifiers differ.
        Message::Open(o)
            if o.bgp_id.is_multicast()
                || o.bgp_id.is_broadcast()
                || o.bgp_id.octets()[0] >= 240 =>
        {
            false
        }
        Message::Open(o) => o.capabilities.iter().all(|c| match c {
            // netgauze interprets most assigned codes (even 128, pre-standard route refresh).
            Capability::Unknown { code, .. } => *code == 255,
            Capability::Multiprotocol(f) => f.is_unicast_ip(),
            Capability::GracefulRestart(g) => g.families.iter().all(|f| f.family.is_unicast_ip()),
            Capability::AddPath(l) => l.iter().all(|f| f.family.is_unicast_ip()),
            Capability::ExtendedNextHop(l) => l.iter().all(|e| {
                (e.afi == 1 || e.afi == 2)
                    && e.safi == 1
                    && (e.next_hop_afi == 1 || e.next_hop_afi == 2)
            }),
            _ => true,
        }),
        // netgauze only accepts code/subcode pairs it has names for.
        Message::Notification(n) => (1..=7).contains(&n.code) && n.subcode_name().is_some(),
        Message::RouteRefresh(r) => r.family.is_unicast_ip() && r.subtype <= 2,
        Message::Keepalive => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn netgauze_agrees((c, m) in with_ctx().prop_filter("not modelled by both", |(_, m)| comparable(m))) {
        let ours = m.encode(&c).unwrap();
        let theirs = through_netgauze(&ours, &c)
            .map_err(|e| TestCaseError::fail(format!("netgauze rejects our {m:?}: {e}")))?;
        let back = decode(&theirs, &c)
            .map_err(|e| TestCaseError::fail(format!("we reject netgauze's re-encoding: {e}")))?;
        prop_assert_eq!(back.message, m);
    }
}

#[test]
fn byte_identical_for_typical_messages() {
    // The messages a Calico node actually sends: netgauze re-encodes them to the same bytes.
    let c = CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    };
    let msgs = vec![
        Message::Keepalive,
        Message::Open(Open::new(
            64512,
            240,
            "10.0.0.1".parse().unwrap(),
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::RouteRefresh,
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: false,
                    notification: false,
                    restart_time: 120,
                    families: vec![GracefulRestartFamily {
                        family: Family::IPV4_UNICAST,
                        forwarding_state: true,
                    }],
                }),
                Capability::FourOctetAs(64512),
            ],
        )),
        Message::Update(Update {
            attributes: PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::default()),
                next_hop: Some("10.0.0.1".parse().unwrap()),
                local_pref: Some(100),
                communities: vec![Community::NO_EXPORT],
                ..PathAttributes::default()
            },
            nlri: vec![Nlri::new("10.244.0.0/26".parse().unwrap())],
            ..Update::default()
        }),
        Message::Update(Update::end_of_rib(Family::IPV6_UNICAST)),
        Message::Notification(Notification::new(6, 2, Vec::new())),
    ];
    for m in msgs {
        let ours = m.encode(&c).unwrap();
        assert_eq!(through_netgauze(&ours, &c).unwrap(), ours, "{m:?}");
    }
}
