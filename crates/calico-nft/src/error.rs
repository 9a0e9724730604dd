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
    /// A configuration value that cannot be written into an nft script.
    #[error("nft config: {0}")]
    BadConfig(String),
    /// A rule references an IP set the model does not hold.
    #[error("{owner} references IP set {id}, which the model does not hold")]
    MissingIpSet { owner: String, id: String },
    /// An endpoint lists a policy that is not active in the model.
    #[error("{owner} references policy {id}, which is not active")]
    MissingPolicy { owner: String, id: String },
    /// Two endpoints on one interface (or two wildcard host endpoints).
    #[error("{owner}: interface {iface:?} already belongs to another endpoint")]
    DuplicateInterface { owner: String, iface: String },
    /// An interface name that Linux or nft would not accept.
    #[error("{owner}: invalid interface name {iface:?}")]
    BadInterface { owner: String, iface: String },
    /// Two model objects map to the same nft chain name.
    #[error("two objects compile to the same chain name {0}")]
    NameClash(String),
    /// Anything else the model says that cannot be rendered.
    #[error("model: {0}")]
    BadModel(String),
}
