use super::Case;
pub const CONFIG_CASES: &[Case] = &[];
pub const PEER_CASES: &[Case] = &[];
pub const FILTER_CASES: &[Case] = &[];
