//! calico-selector (in progress)
