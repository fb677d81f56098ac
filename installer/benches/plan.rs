//! Validate and plan a large site: 9 nodes x 12 disks (2 boot mirror, 6 tank1 raidz2 by serial,
//! 4 tank2 raidz1 by filter), every node planned against a probed 12-disk machine.
//! Target: a few milliseconds for the whole site. Prints the figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench harness
#![allow(missing_docs)] // criterion_main! generates undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::fmt::Write;
use std::time::Instant;
use tappaas_installer::inventory::Inventory;
use tappaas_installer::plan::{self, Hints};
use tappaas_installer::{probe, synth};

const HASH: &str = "$6$tappaasgolden$y6afYXh.S4y3mWbFHnUP/cnYL6Ln1fUxxXBsNJEkQ0K3GVV9HRFBJ/3hQXAPNR71SjLA3rdt6yCIWVJ5.fqVe/";

fn site_text() -> String {
    let mut s = format!(
        "version = 1\n[site]\nname = \"bench\"\ndomain = \"example.org\"\n\
         admin-email = \"it@example.org\"\n[credentials]\nroot-password-hash = \"{HASH}\"\n"
    );
    for n in 1..=9u32 {
        let role = match n {
            1 => "primary",
            9 => "backup",
            _ => "member",
        };
        let _ = write!(
            s,
            "\n[[node]]\nname = \"tappaas{n}\"\nrole = \"{role}\"\n\
             [node.nics]\nwan = {{ name = \"eno1\" }}\nlan = {{ name = \"eno2\" }}\n\
             [node.boot]\ndisks = [{{ serial = \"WJG00000\" }}, {{ serial = \"WJG00001\" }}]\n\
             layout = \"mirror\"\n[node.tank1]\nlayout = \"raidz2\"\ndisks = ["
        );
        for d in 2..8 {
            let _ = write!(s, "{{ serial = \"WJG{d:05}\" }}, ");
        }
        s.push_str(
            "]\n[node.tank2]\nlayout = \"raidz1\"\n\
             disks = [{ model = \"ST4000*\", transport = \"sata\", min-size = \"3T\", count = 4 }]\n",
        );
    }
    s
}

fn plan_site(src: &str, inv: &Inventory) -> usize {
    let site = tappaas_site::parse(src, &tappaas_site::ParseOptions::default())
        .unwrap_or_else(|d| panic!("{}", tappaas_site::render_all(&d, "bench.toml")));
    let mut disks = 0;
    for node in &site.nodes {
        let choice = plan::select_node(inv, &site, Some(&node.name), None).expect("node");
        let p = plan::plan(inv, &site, &choice, &Hints::default())
            .unwrap_or_else(|e| panic!("{}", e.render("bench.toml")));
        disks += p.disks.len();
    }
    disks
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = synth::large_machine(12).expect("spec");
    synth::write_root(&spec, dir.path()).expect("write machine");
    let inv = probe::probe_root(dir.path()).expect("probe");
    let src = site_text();
    assert_eq!(
        plan_site(&src, &inv),
        9 * 12,
        "every node plans all 12 disks"
    );

    let runs = 20;
    let t = Instant::now();
    for _ in 0..runs {
        black_box(plan_site(&src, &inv));
    }
    println!(
        "validate + plan of 9 nodes x 12 disks: {:.2} ms per site{}",
        t.elapsed().as_secs_f64() * 1000.0 / f64::from(runs),
        if cfg!(debug_assertions) {
            " (unoptimized)"
        } else {
            ""
        }
    );
    c.bench_function("validate_and_plan_9x12", |b| {
        b.iter(|| plan_site(black_box(&src), &inv))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
