//! calico-client (in progress)
