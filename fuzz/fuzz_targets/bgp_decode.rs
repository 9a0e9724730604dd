//! Fuzz target: any bytes go through BGP framing and decoding without panicking. The first
//! input byte picks the negotiated context (4-octet AS, ADD-PATH per family, extended
//! messages, peer type). Framing and decoding must agree; decode errors must map to a valid
//! NOTIFICATION; UPDATE errors returned with a decoded message are never session resets;
//! and a decoded message must re-encode into bytes that decode again (to the same message on
//! 4-octet sessions, where no RFC 6793 AS4_PATH reconstruction is involved).

#![no_main]

use calico_bgp_packet::{Action, CodecContext, Frame, PeerKind, decode, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&bits, msg)) = data.split_first() else {
        return;
    };
    let ctx = CodecContext {
        four_octet_as: bits & 1 != 0,
        add_path_ipv4: bits & 2 != 0,
        add_path_ipv6: bits & 4 != 0,
        extended_message: bits & 8 != 0,
        peer: match (bits >> 4) % 3 {
            0 => PeerKind::Unknown,
            1 => PeerKind::Internal,
            _ => PeerKind::External,
        },
    };
    let framed = frame(msg, &ctx);
    let decoded = decode(msg, &ctx);
    match (&framed, &decoded) {
        (Ok(Frame::Complete(n)), Ok(_)) => assert_eq!(*n, msg.len()),
        (_, Ok(_)) => panic!("decoded but framing said {framed:?}"),
        (Err(f), Err(d)) => assert_eq!(f, d),
        _ => {}
    }
    let d = match decoded {
        Ok(d) => d,
        Err(e) => {
            let n = e.notification();
            assert!((1..=7).contains(&n.code), "{e}");
            return;
        }
    };
    for e in &d.errors {
        assert_ne!(e.action, Action::SessionReset, "{e}");
    }
    if let Ok(bytes) = d.message.encode(&ctx) {
        let again = match decode(&bytes, &ctx) {
            Ok(a) => a,
            Err(e) => panic!("re-encoded {:?} does not decode: {e}", d.message),
        };
        if ctx.four_octet_as {
            assert_eq!(again.message, d.message);
        }
    }
});
