//! calico-node agent (being built).
