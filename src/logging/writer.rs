//! The sink's writer thread: log calls hand finished lines to a bounded queue and return; one
//! thread writes them out. A slow or blocked stdout therefore never blocks the loop.
//!
//! # Policy when the queue is full
//! The line is dropped and counted ([`LineWriter::dropped`]), as pino's asynchronous
//! destination does with a bounded buffer (`sonic-boom`'s `maxLength`: a write that would
//! pass it is dropped and a `drop` event emitted). The queue holds at most [`QUEUE_LINES`]
//! lines; each string field of a line is cut at [`MAX_FIELD_BYTES`] (see the formatters), so
//! the memory held is bounded whatever the writer's speed.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Lines the queue holds before new ones are dropped.
pub const QUEUE_LINES: usize = 8192;
/// Longest string field (message, URL, ...) kept in a line; longer ones are cut at a character
/// boundary (the JSON stays valid).
pub const MAX_FIELD_BYTES: usize = 2048;

enum Msg {
    Line(String),
    /// Write everything queued before this, flush, then answer.
    Flush(SyncSender<()>),
}

/// The queue's sending end plus the dropped-lines counter.
pub(crate) struct LineWriter {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl LineWriter {
    /// Starts the writer thread over `out` (stdout in production, a pipe in tests).
    pub(crate) fn spawn(out: Box<dyn Write + Send>) -> std::io::Result<LineWriter> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        std::thread::Builder::new()
            .name("oneloop-log".into())
            .spawn(move || write_lines(rx, out))?;
        Ok(LineWriter {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues `line` (ending in `\n`) without blocking; drops and counts it when the queue is
    /// full.
    pub(crate) fn send(&self, line: String) {
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits until every line queued so far is written and flushed (this one blocks: call it
    /// at exit, not from a callback).
    pub(crate) fn flush(&self) {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// The dropped-lines counter (shared with the metrics).
    pub(crate) fn dropped(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }
}

/// How long the writer thread naps after writing a batch before it looks again. While lines
/// keep coming it never blocks in `recv`, so a log call never has to wake it (a futex wake and
/// a context switch per line cost more than formatting the line); an idle sink blocks.
const BATCH_NAP: Duration = Duration::from_millis(2);

/// The writer thread: blocks for a first line, then writes batches (whatever is queued),
/// flushing and napping [`BATCH_NAP`] after each, until a nap ends with nothing queued.
fn write_lines(rx: Receiver<Msg>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            let mut msg = msg;
            loop {
                match msg {
                    Msg::Line(line) => {
                        let _ = out.write_all(line.as_bytes());
                    }
                    Msg::Flush(done) => {
                        let _ = out.flush();
                        let _ = done.send(());
                    }
                }
                match rx.try_recv() {
                    Ok(m) => msg = m,
                    Err(_) => break,
                }
            }
            let _ = out.flush();
            std::thread::sleep(BATCH_NAP);
            next = rx.try_recv().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{Receiver, Sender};
    use std::sync::Mutex;

    /// An output whose writes block until the test lets them go (a stalled stdout); it says
    /// when the first write started.
    struct Stalled {
        entered: Sender<()>,
        release: Mutex<Receiver<()>>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.entered.send(());
            let _ = self.release.lock().unwrap().recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn full_queue_drops_and_counts_lines_instead_of_blocking() {
        let (release_tx, release) = mpsc::channel();
        let (entered, writer_stalled) = mpsc::channel();
        let out = Stalled {
            entered,
            release: Mutex::new(release),
        };
        let writer = LineWriter::spawn(Box::new(out)).unwrap();
        writer.send("first\n".into());
        // The writer thread now blocks inside its write of the first line.
        writer_stalled.recv().unwrap();
        let extra = 500;
        for i in 0..QUEUE_LINES + extra {
            writer.send(format!("line {i}\n"));
        }
        assert_eq!(writer.dropped().load(Ordering::Relaxed), extra as u64);
        drop(release_tx);
    }
}
