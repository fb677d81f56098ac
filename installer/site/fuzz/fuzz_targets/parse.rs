//! Feeds arbitrary UTF-8 to `tappaas_site::parse`: it must never panic, and every refusal must
//! carry at least one error pointing inside the file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tappaas_site::{parse, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let opts = ParseOptions {
        known_profiles: vec![
            "qotom-q20300g9".into(),
            "minisforum-ms-01".into(),
            "lenovo-m720q".into(),
        ],
    };
    for opts in [ParseOptions::default(), opts] {
        if let Err(diags) = parse(src, &opts) {
            assert!(
                diags.iter().any(|d| d.is_error()),
                "refused without an error"
            );
            let lines = src.split('\n').count() as u32;
            for d in &diags {
                assert!(
                    d.pos.line >= 1 && d.pos.line <= lines && d.pos.col >= 1,
                    "{d} is outside the file"
                );
                let _ = d.render("fuzz.toml");
            }
        }
    }
});
