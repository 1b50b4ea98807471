//! The sink's queue and writer thread: log calls append their line to a bounded in-memory
//! buffer and return (access lines are formatted straight into it, other records copied in
//! from the calling thread's scratch string); one thread takes the whole buffer at a time and
//! writes it out.
//! A slow or blocked stdout therefore never blocks the loop, and a line costs no allocation
//! (a queue of `String`s cost an allocation on the loop thread and a free on the writer thread
//! per line: about 1 us of CPU per request in `hello_app --observe`).
//!
//! # Policy when the buffer is full
//! A line that would take the buffer past [`QUEUE_BYTES`] is dropped and counted
//! ([`LineWriter::dropped`]), as pino's asynchronous destination does with a bounded buffer
//! (`sonic-boom`'s `maxLength`: a write that would pass it is dropped and a `drop` event
//! emitted). Each string field of a line is cut at [`MAX_FIELD_BYTES`] (see the formatters).
//! Memory held: the filling buffer (at most [`QUEUE_BYTES`]) plus the one being written.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Bytes of formatted lines the buffer holds before new lines are dropped (4 MiB: about
/// 16,000 access lines).
pub const QUEUE_BYTES: usize = 4 << 20;
/// Longest string field (message, URL, ...) kept in a line; longer ones are cut at a character
/// boundary (the JSON stays valid).
pub const MAX_FIELD_BYTES: usize = 2048;

/// How long the writer thread naps after writing a batch before it takes the next. While lines
/// keep coming it never waits on the condition variable, so a log call never has to wake it (a
/// futex wake and a context switch per line would cost more than the line); an idle sink waits.
/// 10 ms, not 2: the writer shares a core with the loop when the process is pinned, and each
/// wake-up preempts the loop (`hello_app --observe` at 256 connections: ~2,300 involuntary
/// context switches of the loop thread in 5 s with 2 ms, ~650 with 10 ms). A line waits at
/// most this long plus one write before it reaches stdout.
const BATCH_NAP: Duration = Duration::from_millis(10);

struct Queue {
    /// Lines formatted and not yet taken by the writer (bytes: the access log's fast path
    /// copies request fields it checked as ASCII without a UTF-8 validation).
    buf: Vec<u8>,
    /// The writer thread waits for the first line (the next log call wakes it).
    writer_waiting: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// The output; taken before `queue` by whoever writes (writer thread or flush), so batches
    /// reach it in order.
    out: Mutex<Box<dyn Write + Send>>,
    dropped: Arc<AtomicU64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The queue's writing end plus the dropped-lines counter.
#[derive(Clone)]
pub(crate) struct LineWriter {
    shared: Arc<Shared>,
}

impl LineWriter {
    /// Starts the writer thread over `out` (stdout in production).
    pub(crate) fn spawn(out: Box<dyn Write + Send>) -> std::io::Result<LineWriter> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                buf: Vec::with_capacity(64 * 1024),
                writer_waiting: false,
            }),
            wake: Condvar::new(),
            out: Mutex::new(out),
            dropped: Arc::new(AtomicU64::new(0)),
        });
        let s = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("oneloop-log".into())
            .spawn(move || write_batches(&s))?;
        Ok(LineWriter { shared })
    }

    /// Appends one line, formatted by `format` straight into the buffer; drops and counts it
    /// if the buffer would pass [`QUEUE_BYTES`]. Never blocks on the output.
    pub(crate) fn write_line(&self, format: impl FnOnce(&mut Vec<u8>)) {
        let mut q = lock(&self.shared.queue);
        let start = q.buf.len();
        format(&mut q.buf);
        if q.buf.len() > QUEUE_BYTES {
            q.buf.truncate(start);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if q.writer_waiting {
            q.writer_waiting = false;
            drop(q);
            self.shared.wake.notify_one();
        }
    }

    /// Writes out everything queued so far and flushes (blocks while the output does: call it
    /// at exit, not from a callback).
    pub(crate) fn flush(&self) {
        let mut out = lock(&self.shared.out);
        let batch = std::mem::take(&mut lock(&self.shared.queue).buf);
        let _ = out.write_all(&batch);
        let _ = out.flush();
    }

    /// The dropped-lines counter (shared with the metrics).
    pub(crate) fn dropped(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.shared.dropped)
    }
}

/// The writer thread: waits for a first line, then takes the whole buffer (swapping in an
/// empty one), writes and flushes it, naps [`BATCH_NAP`], and again.
fn write_batches(shared: &Shared) {
    let mut spare = Vec::with_capacity(64 * 1024);
    loop {
        {
            let mut q = lock(&shared.queue);
            while q.buf.is_empty() {
                q.writer_waiting = true;
                q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        }
        {
            let mut out = lock(&shared.out);
            std::mem::swap(&mut lock(&shared.queue).buf, &mut spare);
            let _ = out.write_all(&spare);
            let _ = out.flush();
        }
        // Keep the capacity for the next swap, but not a burst's worth forever.
        spare.clear();
        spare.shrink_to(1 << 20);
        std::thread::sleep(BATCH_NAP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{self, Receiver, Sender};

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
    fn full_buffer_drops_and_counts_lines_instead_of_blocking() {
        let (release_tx, release) = mpsc::channel();
        let (entered, writer_stalled) = mpsc::channel();
        let out = Stalled {
            entered,
            release: Mutex::new(release),
        };
        let writer = LineWriter::spawn(Box::new(out)).unwrap();
        writer.write_line(|b| b.extend_from_slice(b"first\n"));
        // The writer thread now blocks inside its write of the first batch.
        writer_stalled.recv().unwrap();
        let line = "x".repeat(99) + "\n";
        let fit = QUEUE_BYTES / line.len();
        let extra = 500;
        for _ in 0..fit + extra {
            writer.write_line(|b| b.extend_from_slice(line.as_bytes()));
        }
        assert_eq!(writer.dropped().load(Ordering::Relaxed), extra as u64);
        assert_eq!(lock(&writer.shared.queue).buf.len(), fit * line.len());
        drop(release_tx);
    }
}
