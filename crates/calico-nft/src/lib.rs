//! calico-nft: compiles a [`calico_dataplane_model::DataplaneModel`] (what Felix's calculation
//! graph says the dataplane must enforce) into one nftables table, `inet calico`, and computes
//! minimal nft scripts that turn one compiled ruleset into another. It also reads back the
//! shape of a live table from `nft -j list table` output ([`TableShape::from_nft_json`]) so a
//! driver can detect drift.
//!
//! It is pure: no I/O, no processes, no netlink. It must not depend on the calculation graph,
//! the datastore or Calico's v3 API types; its only input is the dataplane model. Running `nft`
//! is the job of the driver in calico-felix.

mod error;
mod shape;

pub use error::NftError;
pub use shape::TableShape;
