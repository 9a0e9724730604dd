//! calico-api (in progress)
