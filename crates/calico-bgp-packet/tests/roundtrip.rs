//! Property tests: for every message type, decode(encode(m)) == m in every negotiated context
//! (2-/4-octet AS, ADD-PATH per family), and re-encoding the decoded message gives the same
//! bytes.

#![allow(clippy::unwrap_used)] // strategies outside #[test] fns unwrap too

mod strategies;

use calico_bgp_packet::*;
use proptest::prelude::*;
use strategies::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_decode_identity((c, m) in with_ctx()) {
        let bytes = m.encode(&c).unwrap();
        prop_assert_eq!(frame(&bytes, &c).unwrap(), Frame::Complete(bytes.len()));
        let d = decode(&bytes, &c).unwrap();
        prop_assert_eq!(&d.message, &m);
        // Re-encoding is stable too.
        prop_assert_eq!(d.message.encode(&c).unwrap(), bytes);
    }

    #[test]
    fn prefixes_survive_any_context((c, u) in ctx().prop_flat_map(|c| (Just(c), update(c)))) {
        let bytes = Message::Update(u.clone()).encode(&c).unwrap();
        let d = decode(&bytes, &c).unwrap();
        let Message::Update(back) = d.message else { panic!("not an UPDATE") };
        prop_assert_eq!(back.announced().count(), u.announced().count());
        prop_assert_eq!(back.withdrawn_routes().count(), u.withdrawn_routes().count());
    }

    #[test]
    fn as_path_through_a_two_octet_session(p in as_path().prop_filter("wide confed", confed_is_narrow)) {
        // RFC 6793 §4.2.2/§4.2.3: NEW -> OLD encoding and back loses nothing.
        let c = CodecContext::initial();
        let u = Update {
            attributes: PathAttributes { as_path: Some(p), ..PathAttributes::default() },
            ..Update::default()
        };
        let bytes = Message::Update(u.clone()).encode(&c).unwrap();
        prop_assert_eq!(decode(&bytes, &c).unwrap().message, Message::Update(u));
    }
}
