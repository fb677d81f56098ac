//! TAPPaaS installer library: `probe -> Inventory`, `site file -> Site`,
//! `plan(inventory, site, node) -> Plan`. The binary in `main.rs` only dispatches here.

pub mod inventory;
