//! The golden three-node site for every hardware profile, and real plans of it against the
//! profiles' fixtures: shared by the `plan_golden` and `system_*` tests.

#![allow(dead_code)] // each test file uses a part

use tappaas_installer::plan::{self, Plan};
use tappaas_installer::profile::hints_for;
use tappaas_installer::profile::{PortRole, SlotRole};
use tappaas_installer::synth::MachineSpec;
use tappaas_installer::system::GeneratedIds;
use tappaas_installer::{probe, profile};
use tappaas_site::Site;

pub const HASH: &str = "$6$tappaasgolden$y6afYXh.S4y3mWbFHnUP/cnYL6Ln1fUxxXBsNJEkQ0K3GVV9HRFBJ/3hQXAPNR71SjLA3rdt6yCIWVJ5.fqVe/";
pub const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQBunsP8seThIskcM6k1gN2dldxunpTlZ4RWcYAZuFW golden@test";

/// A three-node site whose nodes all run on `profile_id`. Where the profile suggests disks or
/// ports, the site leaves them to it (exercising the hints); where it cannot (all-NVMe boxes,
/// optional add-on ports), the site names what the fixture's author meant for each role.
pub fn golden_site(profile_id: &str) -> String {
    let p = profile::find(profile_id).expect("profile");
    let spec_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hardware-profiles/fixtures")
        .join(format!("{profile_id}.machine.toml"));
    let spec = MachineSpec::load(&spec_path).expect("fixture spec");
    let hinted: Vec<SlotRole> = p.disk_hints().iter().map(|(r, _)| *r).collect();
    let mut node_body = String::new();
    for (label, role) in [("wan", PortRole::Wan), ("lan", PortRole::Lan)] {
        if p.default_port(role).is_none() {
            if let Some(nic) = spec.nic_for(role) {
                node_body.push_str(&format!("nics.{label} = {{ name = \"{}\" }}\n", nic.name));
            }
        }
    }
    for role in [SlotRole::Boot, SlotRole::Tank1, SlotRole::Tank2] {
        let disks = spec.disks_for(role);
        if disks.is_empty() {
            continue;
        }
        node_body.push_str(&format!("[node.{}]\nwipe = true\n", role.as_str()));
        if !hinted.contains(&role) {
            let list: Vec<String> = disks
                .iter()
                .map(|d| format!("{{ serial = \"{}\" }}", d.serial))
                .collect();
            node_body.push_str(&format!("disks = [{}]\n", list.join(", ")));
            if disks.len() > 1 {
                node_body.push_str("layout = \"mirror\"\n");
            }
        }
    }
    let mut s = format!(
        "version = 1\n\n[site]\nname = \"golden\"\ndomain = \"example.org\"\n\
         admin-email = \"admin@example.org\"\n\n[credentials]\nroot-password-hash = \"{HASH}\"\n\
         ssh-keys = [\"{KEY}\"]\n"
    );
    for (i, role) in ["primary", "member", "backup"].iter().enumerate() {
        s.push_str(&format!(
            "\n[[node]]\nname = \"tappaas{}\"\nrole = \"{role}\"\nprofile = \"{profile_id}\"\n{node_body}",
            i + 1
        ));
    }
    s
}

/// `src` with `extra` (whole TOML tables) inserted before the first `[[node]]`.
pub fn with_tables(src: &str, extra: &str) -> String {
    let at = src.find("\n[[node]]").expect("a node");
    format!("{}\n{extra}{}", &src[..at], &src[at..])
}

/// `src` with `keys` added to the `[site]` table.
pub fn with_site_keys(src: &str, keys: &str) -> String {
    src.replacen("[site]\n", &format!("[site]\n{keys}"), 1)
}

/// The golden site with a static upstream (the firewall's WAN address).
pub fn static_upstream_site(profile_id: &str) -> String {
    with_tables(
        &golden_site(profile_id),
        "[network.upstream]\nmode = \"static\"\naddress = \"192.168.1.50/24\"\n\
         gateway = \"192.168.1.1\"\ndns = [\"9.9.9.9\"]\n",
    )
}

/// The golden site with every locale and naming default changed: TAPPaaS's newer pool names,
/// a Swiss keyboard, a Danish time zone, two DNS servers, another internal domain.
pub fn custom_site(profile_id: &str) -> String {
    let s = with_site_keys(
        &golden_site(profile_id),
        "internal-domain = \"lab.example.org\"\ntimezone = \"Europe/Copenhagen\"\n\
         keyboard = \"de-ch\"\n",
    );
    with_tables(
        &s,
        "[network]\ndns = [\"10.0.0.1\", \"10.0.0.2\"]\n\n[cluster]\nname = \"acme-lab\"\n\n\
         [storage.tank1]\nname = \"tanka1\"\n\n[storage.tank2]\nname = \"tankb1\"\n",
    )
}

pub fn parse(src: &str) -> Site {
    tappaas_installer::frontdoor::parse_site(src).unwrap_or_else(|d| {
        panic!(
            "site is invalid:\n{}\n{src}",
            tappaas_site::render_all(&d, "site.toml")
        )
    })
}

/// Plans `node` of `src` on `profile_id`'s fixture.
pub fn plan_site(profile_id: &str, src: &str, node: &str) -> (Plan, Site) {
    let site = parse(src);
    let fixture = probe::embedded_fixture(profile_id).expect("embedded fixture");
    let inv = probe::probe(&fixture).expect("probe fixture");
    let choice = plan::select_node(&inv, &site, Some(node), None).expect("node");
    let plan = plan::plan(&inv, &site, &choice, &hints_for(Some(profile_id)))
        .unwrap_or_else(|e| panic!("{profile_id} {node}:\n{}", e.render("site.toml")));
    (plan, site)
}

/// Fixed ids, so renders are reproducible.
pub fn ids() -> GeneratedIds {
    GeneratedIds {
        machine_id: [
            0x4f, 0x1c, 0x2a, 0x93, 0x5b, 0x6d, 0x4e, 0x7f, 0x8a, 0x90, 0xab, 0xcd, 0xef, 0x01,
            0x23, 0x45,
        ],
        hostid: 0x00c0_ffee,
        installed_at: 1_767_225_600, // 2026-01-01T00:00:00Z
    }
}

pub const NODES: [(&str, &str); 3] = [
    ("tappaas1", "primary"),
    ("tappaas2", "member"),
    ("tappaas3", "backup"),
];
