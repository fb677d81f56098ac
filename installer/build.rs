//! Packs every `hardware-profiles/fixtures/<id>/` directory into a bundle in `OUT_DIR` and
//! writes `fixtures.rs`, which `src/probe/embedded.rs` includes. The fixture folder may be
//! absent or empty: then no fixture is embedded.

use std::env;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

#[allow(dead_code)]
#[path = "src/probe/bundle.rs"]
mod bundle;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let profiles = manifest.join("../hardware-profiles");
    let fixtures = profiles.join("fixtures");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/probe/bundle.rs");
    // Cargo scans a watched directory recursively. Watch the fixtures, or the folder a new
    // `fixtures/` will appear in; a watched path that does not exist reruns every build,
    // which is cheap here.
    let watch = if fixtures.is_dir() || !profiles.is_dir() {
        &fixtures
    } else {
        &profiles
    };
    println!("cargo:rerun-if-changed={}", watch.display());

    let mut ids = Vec::new();
    if let Ok(entries) = fs::read_dir(&fixtures) {
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                if let Ok(id) = entry.file_name().into_string() {
                    ids.push(id);
                }
            }
        }
    }
    ids.sort();

    let mut code = String::from("static FIXTURES: &[(&str, &[u8])] = &[\n");
    for id in &ids {
        let bytes = bundle::pack_dir(&fixtures.join(id))
            .map_err(|e| format!("packing fixture {}: {e}", fixtures.join(id).display()))?;
        let file = out.join(format!("fixture-{id}.bundle"));
        fs::write(&file, bytes)?;
        let path = file.to_str().ok_or("OUT_DIR is not UTF-8")?;
        writeln!(code, "    ({id:?}, include_bytes!({path:?})),")?;
    }
    code.push_str("];\n");
    fs::write(out.join("fixtures.rs"), code)?;
    Ok(())
}
