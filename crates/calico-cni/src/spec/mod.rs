//! The CNI protocol as a plugin sees it (containernetworking/cni SPEC.md, spec 1.1.0, with the
//! result shapes of 0.1.0 to 1.0.0): the environment ([`env`]), versions ([`version`]), results
//! ([`result`]) and errors ([`error`]). Nothing here knows about Calico.

pub mod env;
pub mod error;
pub mod result;
pub mod version;

pub use env::{CniEnv, Command};
pub use error::{CniError, ErrorCode};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use version::{CURRENT_VERSION, SUPPORTED_VERSIONS};
