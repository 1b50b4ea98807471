//! A 100 MiB file read through a `ReadStream` with constant memory: the process's peak RSS
//! (VmHWM) grows by far less than the file. Alone in its test binary so no other test's
//! allocations move the peak.

use std::cell::Cell;
use std::rc::Rc;

use oneloop_runtime::fs::{ReadStream, ReadStreamOptions};
use oneloop_runtime::Loop;

/// The process's peak resident set (VmHWM) in KiB, from /proc.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
fn a_100_mib_file_streams_through_with_constant_memory() {
    const LEN: u64 = 100 * 1024 * 1024;
    let path = std::env::temp_dir().join(format!("oneloop-fs-100mib-{}", std::process::id()));
    {
        // Written in 1 MiB blocks so the set-up itself stays small.
        let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
        let mut f = std::fs::File::create(&path).unwrap();
        for _ in 0..100 {
            std::io::Write::write_all(&mut f, &block).unwrap();
        }
    }
    let before = peak_rss_kib();
    let total = Rc::new(Cell::new(0u64));
    let chunks = Rc::new(Cell::new(0u64));
    let mut lp = Loop::new().unwrap();
    let (t, c) = (total.clone(), chunks.clone());
    ReadStream::open(
        &mut lp,
        &path,
        ReadStreamOptions::default(),
        move |_lp, _s, chunk| {
            t.set(t.get() + chunk.len() as u64);
            c.set(c.get() + 1);
        },
    )
    .unwrap();
    lp.run().unwrap();
    let grown = peak_rss_kib().saturating_sub(before);
    let _ = std::fs::remove_file(&path);
    assert_eq!(total.get(), LEN);
    assert_eq!(chunks.get(), LEN / 65_536, "64 KiB chunks");
    // One 64 KiB chunk at a time: allow 8 MiB for allocator and thread-stack slack; reading
    // the file into memory would grow the peak by 100 MiB.
    assert!(
        grown < 8 * 1024,
        "peak RSS grew by {grown} KiB while streaming 100 MiB"
    );
}
