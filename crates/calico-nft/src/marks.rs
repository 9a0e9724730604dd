//! Packet mark bits, as Felix allocates them from `IptablesMarkMask` (default `0xffff0000`):
//! accept, pass and two scratch bits (`felix/rules/rule_defs.go` `MarkAccept`, `MarkPass`,
//! `MarkScratch0`, `MarkScratch1`). The accept bit carries "allowed" from a policy chain to
//! its endpoint chain, and from the raw / pre-DNAT stages to the filter stage. One bit of
//! our own, from the same mask: the global table's verdict for the shard tables
//! ([`GLOBAL_ACCEPT`], [`GLOBAL_GROUP`]).

/// Set by Allow; "return if policy accepted".
pub const ACCEPT: u32 = 0x0001_0000;
/// Set by Pass; skips the rest of the tier.
pub const PASS: u32 = 0x0002_0000;
/// ORs the source side's port alternatives.
pub const SCRATCH0: u32 = 0x0004_0000;
/// ORs the destination side's port alternatives.
pub const SCRATCH1: u32 = 0x0008_0000;
/// Set by the global table of a sharded layout when the endpoint's global tiers allowed the
/// packet: the shard table, later at the same hook, then skips the endpoint's remaining
/// tiers and profiles (Calico: an Allow ends policy evaluation for that direction).
pub const GLOBAL_ACCEPT: u32 = 0x0010_0000;
/// The 11 remaining bits of Calico's mask: which group chain of the global table evaluated
/// the packet at this hook ([`group_mark`]; 0: none). A shard chain that starts after a
/// global prefix only trusts the verdict of the group it was compiled for, and drops when
/// another (or none) ran: tables replaced one by one never leave a prefix unenforced.
pub const GLOBAL_GROUP: u32 = 0xffe0_0000;
/// Every bit Calico uses.
pub const ALL: u32 = ACCEPT | PASS | SCRATCH0 | SCRATCH1 | GLOBAL_ACCEPT | GLOBAL_GROUP;

/// The [`GLOBAL_GROUP`] value of group id `id` (1..=2047).
pub(crate) fn group_mark(id: u16) -> u32 {
    (u32::from(id) << GLOBAL_GROUP.trailing_zeros()) & GLOBAL_GROUP
}

pub(crate) fn set_mark(bits: u32) -> String {
    format!("meta mark set meta mark | 0x{bits:08x}")
}

pub(crate) fn clear_mark(bits: u32) -> String {
    format!("meta mark set meta mark & 0x{:08x}", !bits)
}

pub(crate) fn mark_is_set(bit: u32) -> String {
    format!("meta mark & 0x{bit:08x} != 0")
}

pub(crate) fn mark_is_clear(bit: u32) -> String {
    format!("meta mark & 0x{bit:08x} == 0")
}
