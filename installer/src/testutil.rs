//! Shared by the crate's unit tests: a one-node site on the `qemu-lab` profile, planned against
//! that profile's embedded fixture (the machine the qemu lab boots).

use crate::inventory::Inventory;
use crate::plan::{self, Plan};
use tappaas_site::Site;

/// The one-node lab site: the profile's hints pick every disk and port.
pub(crate) const LAB_SITE: &str = r#"version = 1

[site]
name = "lab"
domain = "example.org"
admin-email = "admin@example.org"

[credentials]
root-password-hash = "$6$unit$y6afYXh.S4y3mWbFHnUP/cnYL6Ln1fUxxXBsNJEkQ0K3GVV9HRFBJ/3hQXAPNR71SjLA3rdt6yCIWVJ5.fqVe/"
ssh-keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQBunsP8seThIskcM6k1gN2dldxunpTlZ4RWcYAZuFW lab@test"]

[[node]]
name = "tappaas1"
role = "primary"
profile = "qemu-lab"

[node.tank1]

[node.tank2]
"#;

/// [`LAB_SITE`] parsed, the fixture probed, and node tappaas1 planned on it.
pub(crate) fn lab_plan() -> (Plan, Site, Inventory) {
    let site = crate::frontdoor::parse_site(LAB_SITE)
        .unwrap_or_else(|d| panic!("{}", tappaas_site::render_all(&d, "lab.toml")));
    let fixture = crate::probe::embedded_fixture("qemu-lab").expect("qemu-lab fixture");
    let inv = crate::probe::probe(&fixture).expect("probe fixture");
    let choice = plan::select_node(&inv, &site, Some("tappaas1"), None).expect("node");
    let p = plan::plan(
        &inv,
        &site,
        &choice,
        &crate::profile::hints_for(Some("qemu-lab")),
    )
    .unwrap_or_else(|e| panic!("{}", e.render("lab.toml")));
    (p, site, inv)
}
