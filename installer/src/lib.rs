//! TAPPaaS installer library: `probe -> Inventory`, `site file -> Site`,
//! `plan(inventory, site, node) -> Plan`. The binary in `main.rs` only dispatches here.

pub mod cli;
pub mod disk;
pub mod exec;
pub mod frontdoor;
pub mod install;
pub mod inventory;
pub mod joinkeys;
pub mod plan;
pub mod preflight;
pub mod probe;
pub mod profile;
pub mod progress;
pub mod rootfs;
pub mod synth;
pub mod system;
#[cfg(test)]
mod testutil;
pub mod tui;
pub mod zfs;
