//! Raw AES-GCM-128 throughput of the security core (no Python): `cargo bench --bench gcm`.

use std::hint::black_box;
use std::time::Instant;

use smmc_core::security::GcmKey;

fn main() {
    let key = GcmKey::new(&[7u8; 16], "key").unwrap_or_else(|e| panic!("{e}"));
    let iv = [1u8; 12];
    println!("{:>7} {:>12} {:>12}", "size", "encrypt MB/s", "decrypt MB/s");
    for size in [256usize, 4096, 65536] {
        let pt = vec![0x5au8; size];
        let ct = key.encrypt(&iv, b"aad", &pt, 12).unwrap_or_else(|e| panic!("{e}"));
        let mut out = vec![0u8; size];
        let mut enc = vec![0u8; size + 12];
        let n = (200_000_000 / size).max(100);
        let t = Instant::now();
        for _ in 0..n {
            key.encrypt_to(&iv, b"aad", black_box(&pt), 12, &mut enc).unwrap_or_else(|e| panic!("{e}"));
        }
        let e = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..n {
            key.decrypt_to(&iv, b"aad", black_box(&ct), 12, &mut out).unwrap_or_else(|e| panic!("{e}"));
        }
        let d = t.elapsed().as_secs_f64();
        let mbs = |s: f64| (size * n) as f64 / s / 1e6;
        println!("{size:>7} {:>12.0} {:>12.0}", mbs(e), mbs(d));
    }
}
