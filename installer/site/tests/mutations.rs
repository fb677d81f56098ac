//! parse() must never panic, whatever it is fed: thousands of deterministic mutations of the
//! example site files (byte flips, truncations, line swaps, deletions, duplications and
//! inserted tokens). The cargo-fuzz target in `fuzz/` does the same, guided by coverage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::panic::{catch_unwind, AssertUnwindSafe};
use tappaas_site::{parse, ParseOptions};

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    "[[node]]\n",
    "[node.boot]\n",
    "[node.tank1]\n",
    "[storage.tank1]\n",
    "[network.upstream]\n",
    "=",
    "\"",
    "'",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\n",
    "#",
    ".",
    "-",
    "0x",
    "\\u00e9",
    "é",
    "\u{0}",
    "disks = [",
    "{ serial = \"S\" }",
    "/dev/sda",
    "count = 0",
    "count = 64",
    "id = 10",
    "layout = \"raidz2\"",
    "role = \"primary\"\n",
    "role = \"backup\"\n",
    "min-size = \"1.5T\"",
    "max-size = 18446744073709551615",
    "99999999999999999999999",
    "-1",
    "1e308",
    "nan",
    "inf",
    "true",
    "2026-01-01T00:00:00Z",
    "address = \"10.0.0.1\"",
    "management = \"0.0.0.0/0\"",
    "management = \"255.255.255.248/29\"",
    "identify = { profile = \"p\", index = 9 }",
    "nics = { wan = { port = \"ETH1\" } }",
    "mac = \"ff:ff:ff:ff:ff:ff\"",
    "a.b.c.d = 1",
    "\"\"\"",
    "'''",
    "[[",
    "]]",
    "\t",
    "\r\n",
    "node = []",
    "node = [1, {}]",
    "site = 3",
];

fn examples() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples");
    ["three-node-site.toml", "one-node-site.toml"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
        .collect()
}

fn mutate(rng: &mut Rng, src: &str) -> String {
    let mut bytes = src.as_bytes().to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => {
                let cut = rng.below(bytes.len() + 1);
                bytes.truncate(cut);
            }
            2..=4 => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.len() >= 2 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    match rng.below(3) {
                        0 => lines.swap(a, b),
                        1 => {
                            lines.remove(a);
                        }
                        _ => lines.insert(b, lines[a]),
                    }
                }
                bytes = lines.join("\n").into_bytes();
            }
            _ => {
                let at = rng.below(bytes.len() + 1);
                let tok = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, tok.bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn parse_never_panics_on_mutated_examples() {
    let opts = [
        ParseOptions::default(),
        ParseOptions {
            known_profiles: vec!["qotom-q20300g9".into(), "lenovo-m720q".into()],
        },
    ];
    let mut rng = Rng(0x07A9_9AA5_1234_5678);
    let mut rejected = 0;
    let sources = examples();
    let total = 4000;
    for i in 0..total {
        let src = mutate(&mut rng, &sources[i % sources.len()]);
        let opts = &opts[i % 2];
        match catch_unwind(AssertUnwindSafe(|| parse(&src, opts))) {
            Ok(Ok(_)) => {}
            Ok(Err(diags)) => {
                rejected += 1;
                // Every refusal must say something, and point inside the file.
                assert!(
                    diags.iter().any(|d| d.is_error()),
                    "Err without errors for:\n{src}"
                );
                let lines = src.split('\n').count() as u32;
                for d in &diags {
                    assert!(
                        d.pos.line >= 1 && d.pos.line <= lines.max(1),
                        "{d} outside the file:\n{src}"
                    );
                    assert!(!d.message.is_empty());
                }
            }
            Err(_) => panic!("parse panicked on mutation #{i}:\n-----\n{src}\n-----"),
        }
    }
    // The mutations must actually exercise the error paths.
    assert!(
        rejected > total / 2,
        "only {rejected} of {total} mutations were rejected"
    );
}

#[test]
fn pathological_inputs() {
    let deep_arrays = format!("version = {}1{}", "[".repeat(5000), "]".repeat(5000));
    let deep_tables = format!("x = {}{}", "{ a = ".repeat(2000), "}".repeat(2000));
    let many_nodes = "[[node]]\nrole = \"member\"\n".repeat(2000);
    let long_line = format!("version = \"{}\"", "x".repeat(1 << 20));
    for src in [
        "",
        "\u{feff}",
        "\0",
        "[",
        "[[",
        "version = 1\n[[node]]\n[[node.boot.disks]]\n",
        "node = [[]]",
        "node = [{ boot = { disks = [[[]]] } }]",
        deep_arrays.as_str(),
        deep_tables.as_str(),
        many_nodes.as_str(),
        long_line.as_str(),
    ] {
        let r = catch_unwind(|| parse(src, &ParseOptions::default()));
        assert!(r.is_ok(), "panicked on {:?}", &src[..src.len().min(80)]);
        assert!(r.unwrap_or(Err(vec![])).is_err());
    }
}
