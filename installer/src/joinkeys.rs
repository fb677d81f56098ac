//! `join-keys`: the join secret and the primary's certificate and key, made in advance. The
//! maker lives in the site crate beside the site file's reader and writer
//! ([`tappaas_site::joinkeys`]); this module keeps the installer's paths to it.

pub use tappaas_site::joinkeys::*;
