//! `tappaas-bootstrap`: the TAPPaaS first-boot agent. On every node it checks the network the
//! installer wrote, creates or joins the Proxmox VE cluster, registers the data pools; on the
//! backup node it sets up Proxmox Backup Server. Every step is idempotent and its state is
//! persisted, so a crash or reboot resumes where it stopped. See docs/first-boot.md.

pub mod config;
pub mod connect;
pub mod net;
pub mod pve;
pub mod runner;
pub mod state;
pub mod status;
pub mod steps;
pub mod systemd;
