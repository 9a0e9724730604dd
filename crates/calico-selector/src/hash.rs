//! Calico's content-hash IDs (`libcalico-go/lib/hash/unique_id.go` `MakeUniqueID`).
//!
//! `prefix + ":" + base64url_nopad(SHA-224(prefix + ":" + content))`. Selector unique IDs use
//! prefix `s`; Felix derives IP set names from them, so the bytes must match Calico's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha224};

/// Calico `hash.MakeUniqueID(prefix, content)`.
pub fn make_unique_id(prefix: &str, content: &str) -> String {
    let mut h = Sha224::new();
    h.update(prefix.as_bytes());
    h.update(b":");
    h.update(content.as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(prefix.len() + 1 + 38);
    out.push_str(prefix);
    out.push(':');
    URL_SAFE_NO_PAD.encode_string(digest, &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Facts from Calico's unique_id_test.go: prefix kept, deterministic, content and prefix
    // both matter, SHA-224 gives 38 base64url characters.
    #[test]
    fn shape_and_determinism() {
        let a = make_unique_id("test", "content");
        assert!(a.starts_with("test:"));
        assert_eq!(a.len() - "test:".len(), 38);
        assert_eq!(a, make_unique_id("test", "content"));
        assert_ne!(a, make_unique_id("test", "content2"));
        assert_ne!(a, make_unique_id("test2", "content"));
        assert!(make_unique_id("", "content").starts_with(':'));
        assert!(make_unique_id("prefix", "").len() > "prefix:".len());
    }

    #[test]
    fn known_selector_ids() {
        // Values from Calico's parser_test.go canonicalisationTests.
        assert_eq!(
            make_unique_id("s", "all()"),
            "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"
        );
        assert_eq!(
            make_unique_id("s", "!(has(b) || !has(a))"),
            "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q"
        );
    }
}
