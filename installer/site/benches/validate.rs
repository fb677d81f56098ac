//! Parse + validate a large site: 9 nodes with 12 disks each (2 boot, 6 tank1, 4 tank2), every
//! node identified by MAC with both NICs named. Target: a few milliseconds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench harness
#![allow(missing_docs)] // criterion_main! generates undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::fmt::Write;

const HASH: &str = "$6$erNM9Gso4420Jdng$8r6crX.dirguFugyfZr3BV6j5p15nGdpj3cmi0anwExq774Lm/TScbJCf9a5O2Trq2GNjlzD6zon7QjdOsEOb/";

fn big_site() -> String {
    let mut s = format!(
        "version = 1\n[site]\nname = \"bench\"\ndomain = \"bench.example\"\n\
         admin-email = \"it@bench.example\"\ntimezone = \"Europe/Copenhagen\"\n\
         [credentials]\nroot-password-hash = \"{HASH}\"\nssh-keys = [\n  \
         \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICs4Fy8pLyxMdPeEqWAR0+mKt2tSQM+9lAT1IhRwwGkc admin@laptop\",\n]\n\
         [network]\nmanagement = \"10.0.0.0/24\"\n[network.upstream]\nmode = \"static\"\n\
         address = \"192.168.1.50/24\"\ngateway = \"192.168.1.1\"\ndns = [\"9.9.9.9\"]\n"
    );
    for n in 1..=9u32 {
        let role = match n {
            1 => "primary",
            9 => "backup",
            _ => "member",
        };
        let _ = write!(
            s,
            "\n[[node]]\n# node {n}\nname = \"tappaas{n}\"\nid = {n}\nrole = \"{role}\"\n\
             address = \"10.0.0.{}\"\nidentify = {{ mac = \"a8:b8:e0:00:0{n}:01\" }}\n\
             [node.nics]\nwan = {{ mac = \"a8:b8:e0:00:0{n}:01\" }}\nlan = {{ pci = \"0000:0{n}:00.0\" }}\n\
             [node.boot]\ndisks = [\n  {{ by-id = \"/dev/disk/by-id/nvme-Samsung_SSD_980_500GB_S64ANS0T{n}0001\" }},\n  \
             {{ wwn = \"0x5002538e40a1b{n}01\" }},\n]\nlayout = \"mirror\"\n[node.tank1]\ndisks = [\n",
            9 + n
        );
        for d in 0..6 {
            let _ = writeln!(s, "  {{ serial = \"S6ZZN{n}T{d:04}\" }},");
        }
        let _ = write!(
            s,
            "]\nlayout = \"raidz2\"\nwipe = true\n[node.tank2]\ndisks = [\n  \
             {{ model = \"WDC WD40EFRX*\", transport = \"sata\", min-size = \"3.5T\", max-size = \"4TB\", rotational = true, count = 2 }},\n  \
             {{ vendor = \"ATA\", serial = \"ZR[0-9]*\", min-size = 4000000000000, count = 2 }},\n]\nlayout = \"raidz1\"\n"
        );
    }
    s
}

fn bench(c: &mut Criterion) {
    let src = big_site();
    let opts = tappaas_site::ParseOptions::default();
    let (site, diags) = tappaas_site::parse_with_warnings(&src, &opts);
    let site = site.unwrap_or_else(|| panic!("{}", tappaas_site::render_all(&diags, "bench.toml")));
    assert_eq!(site.nodes.len(), 9);
    let disks = |r: &tappaas_site::DiskRole| -> u32 {
        r.disks
            .iter()
            .map(|d| match d {
                tappaas_site::DiskSelector::Filter(f) => f.count,
                _ => 1,
            })
            .sum()
    };
    for n in &site.nodes {
        let all =
            disks(&n.boot) + n.tank1.as_ref().map_or(0, disks) + n.tank2.as_ref().map_or(0, disks);
        assert_eq!(all, 12, "{}", n.name);
    }
    let start = std::time::Instant::now();
    let rounds = 50;
    for _ in 0..rounds {
        black_box(tappaas_site::parse(black_box(&src), &opts).is_ok());
    }
    println!(
        "parse+validate of a 9-node x 12-disk site ({} bytes, {} lines): {:.3} ms per run",
        src.len(),
        src.lines().count(),
        start.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds)
    );
    c.bench_function("parse_validate_9_nodes_12_disks", |b| {
        b.iter(|| tappaas_site::parse(black_box(&src), &opts))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
