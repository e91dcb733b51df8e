//! Relocate a restored environment root and print the report as JSON.
//!
//! `cargo run --release -p westtek-inventory --example relocate -- ROOT OLD_ROOT [BASE_PREFIX_NEW]`

use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [root, old_root, rest @ ..] = args.as_slice() else {
        return Err("usage: relocate ROOT OLD_ROOT [BASE_PREFIX_NEW]".into());
    };
    let t = Instant::now();
    let report = westtek_inventory::relocate(root, old_root, rest.first().map(PathBuf::as_path))?;
    let elapsed = t.elapsed();
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!(
        "relocate: {} rewritten, {} relinked, {} skipped in {:.1} ms",
        report.rewritten.len(),
        report.relinked.len(),
        report.skipped.len(),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}
