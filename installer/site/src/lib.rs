//! The TAPPaaS site file (version 1): one TOML file that describes a whole site, so the same
//! USB stick installs every node. Shared by the installer and the first-boot agent.

pub mod model;

pub use model::*;
