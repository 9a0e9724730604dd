//! Fuzz target: any UTF-8 text goes through the selector parser without panicking; when it
//! parses, the canonical form must parse again, canonicalising a second time must be a fixed
//! point (one re-parse collapses Calico's `!!` spelling), and `validate` must agree with
//! `parse`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = calico_selector::parse(text);
    assert_eq!(parsed.is_ok(), calico_selector::validate(text).is_ok());
    let Ok(sel) = parsed else {
        return;
    };
    let once = match calico_selector::parse(sel.as_str()) {
        Ok(s) => s,
        Err(e) => panic!("canonical form {sel} of {text:?} does not parse: {e}"),
    };
    let twice = match calico_selector::parse(once.as_str()) {
        Ok(s) => s,
        Err(e) => panic!("canonical form {once} does not parse: {e}"),
    };
    assert_eq!(once.as_str(), twice.as_str());
    let _ = sel.unique_id();
    let _ = sel.label_restrictions();
});
