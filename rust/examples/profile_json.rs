//! The bench/decode.py load profile (9,600 IDIS-style entries) through
//! `profile_to_json` in a loop, without Python: for `perf` / callgrind runs.
//! `cargo run --release --example profile_json -- [iterations]` prints MB/s of
//! A-XDR input (best of 5 batches, CPU time) and an FNV-1a hash of the output (to check a change keeps it).

use std::hint::black_box;
use std::time::Instant;

use smmc_core::cosem_datetime::{civil_from_days, weekday_of};
use smmc_core::profile::json::{profile_to_json_with, ColumnSpec, JsonScratch};

const ROWS: usize = 9_600;
const PERIOD: u32 = 900;

fn load_profile() -> Vec<u8> {
    let start = 20_666 * 86_400i64; // 2026-08-01T00:00
    let mut out = vec![0x01, 0x82];
    out.extend_from_slice(&(ROWS as u16).to_be_bytes());
    for i in 0..ROWS {
        let t = start + PERIOD as i64 * i as i64;
        let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        out.extend_from_slice(&[0x02, 0x06, 0x09, 0x0c]);
        out.extend_from_slice(&(y as u16).to_be_bytes());
        out.extend_from_slice(&[m, d, weekday_of(y, m, d), (secs / 3600) as u8, (secs / 60 % 60) as u8, 0, 0]);
        out.extend_from_slice(&(-60i16).to_be_bytes());
        out.push(0);
        out.extend_from_slice(&[0x11, if i % 97 == 0 { 0x80 } else { 0 }]);
        for reg in 0..4u32 {
            out.push(0x06);
            out.extend_from_slice(&(1_000_000 * reg + 17 * i as u32).to_be_bytes());
        }
    }
    out
}

fn main() {
    let iterations: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let buf = load_profile();
    let cols: Vec<ColumnSpec> = (0..4)
        .map(|k| ColumnSpec {
            index: 2 + k,
            reading_type: format!("0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.{k}"),
            obis: format!("1.0.{}.8.0.255", k + 1),
            unit: "kWh".into(),
            scaler: -3,
        })
        .collect();
    let mut scratch = JsonScratch::default();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let c = cpu_ns();
        for _ in 0..iterations {
            profile_to_json_with(&mut scratch, black_box(&buf), 0, &cols, Some(1), Some(PERIOD))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // CPU time of this thread where the kernel reports it (a shared machine), else wall time
        let s = match (c, cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => t.elapsed().as_secs_f64(),
        };
        best = best.min(s);
    }
    let s = best;
    let hash =
        scratch.json().iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100_0000_01b3));
    println!(
        "{} B in, {} B out, {:.0} MB/s, fnv1a {hash:016x}",
        buf.len(),
        scratch.json().len(),
        (buf.len() * iterations) as f64 / s / 1e6
    );
}

/// Nanoseconds this thread has run on a CPU (Linux schedstat).
fn cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
