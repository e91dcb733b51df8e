//! Print the inventory of an environment root and how long taking it took.
//!
//! `cargo run --release -p westtek-inventory --example inventory -- ROOT [--json] [--runs N]`
//!
//! Reports the first (cold-ish) run, the median of the following runs, and
//! the median of runs that reuse the previous inventory (what a drift
//! watcher does on every event).

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut root = None;
    let mut json = false;
    let mut runs = 10usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--runs" => runs = args.next().ok_or("--runs N")?.parse()?,
            _ => root = Some(PathBuf::from(a)),
        }
    }
    let root = root.ok_or("usage: inventory ROOT [--json] [--runs N]")?;

    let t = Instant::now();
    let first = westtek_inventory::inventory(&root)?;
    let first_time = t.elapsed();
    let mut full = Vec::new();
    let mut reuse = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let inv = westtek_inventory::inventory(&root)?;
        full.push(t.elapsed());
        let t = Instant::now();
        let again = westtek_inventory::inventory_reusing(&root, &inv)?;
        reuse.push(t.elapsed());
        assert_eq!(inv, again, "a reused inventory must equal a full one");
    }
    if json {
        println!("{}", String::from_utf8(first.to_json()?)?);
    }
    let data_bytes: u64 = first.data_files.iter().map(|d| d.size).sum::<u64>()
        + first.notebooks.iter().map(|n| n.size).sum::<u64>();
    eprintln!(
        "{}: {} packages, {} kernels, {} extensions, {} config files, {} notebooks, {} data files ({:.1} MB in home), {} warnings",
        root.display(),
        first.packages.len(),
        first.kernels.len(),
        first.extensions.len(),
        first.config_files.len(),
        first.notebooks.len(),
        first.data_files.len(),
        data_bytes as f64 / 1e6,
        first.warnings.len()
    );
    eprintln!(
        "inventory: first {:.1} ms, median of {runs} {:.1} ms; reusing the previous inventory: median {:.1} ms",
        first_time.as_secs_f64() * 1e3,
        median(full).as_secs_f64() * 1e3,
        median(reuse).as_secs_f64() * 1e3
    );
    Ok(())
}
