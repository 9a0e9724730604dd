//! Errors of the compiler and of the shape reader.

/// What went wrong while compiling a model or reading a table listing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NftError {
    /// `nft -j` output that is not the JSON nft emits.
    #[error("nft JSON listing: {0}")]
    BadJson(String),
    /// The listing has no table of that name in family inet.
    #[error("nft JSON listing has no table inet {0}")]
    NoSuchTable(String),
}
