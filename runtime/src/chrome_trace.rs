//! A trace of the loop in the Chrome Trace Event format, for Perfetto (<https://ui.perfetto.dev>)
//! or `chrome://tracing`.
//!
//! The file is `{"traceEvents":[...]}` with one complete event (`"ph":"X"`, `ts` and `dur` in
//! microseconds since the loop was created) per iteration, per phase, per poll wait and per
//! callback, all on `pid` 1, `tid` 1, so a viewer nests them: iterations contain phases, phases
//! contain callbacks. `cat` is `iteration`, `phase`, `wait` or `callback`. A counter event
//! (`"ph":"C"`, name `queues`) per iteration carries the queue depths when metrics are enabled.
//!
//! Events are written as they end (a parent after its children); viewers sort them. A callback
//! ends when the loop moves on: at the next callback (the next-tick and microtask drain after a
//! callback shows as its own callbacks), at the next phase, or at the end of the iteration.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use crate::metrics::QueueDepths;
use crate::trace::{CallbackKind, Phase};

/// Writes the loop's iterations, phases and callbacks as Chrome trace events.
///
/// Install one with [`Loop::start_trace_file`](crate::Loop::start_trace_file) or
/// [`Loop::start_chrome_trace`](crate::Loop::start_chrome_trace); end it with
/// [`Loop::finish_trace`](crate::Loop::finish_trace). Dropping it (or the loop) also finishes
/// the file, ignoring errors.
///
/// # Errors
/// A write error stops the trace (later events are dropped) and is returned by `finish`.
pub struct ChromeTrace {
    out: Box<dyn Write>,
    /// Time zero: the loop's creation once installed.
    pub(crate) base: Instant,
    wrote_any: bool,
    finished: bool,
    error: Option<io::Error>,
    iteration: Option<(u64, u64)>,
    phase: Option<(Phase, u64, u64)>,
    callback: Option<(CallbackKind, u64)>,
}

impl ChromeTrace {
    /// A trace written to a new file at `path` (buffered).
    pub fn create(path: impl AsRef<Path>) -> io::Result<ChromeTrace> {
        let file = File::create(path)?;
        ChromeTrace::new(BufWriter::with_capacity(64 * 1024, file))
    }

    /// A trace written to `out`. Wrap unbuffered writers in a `BufWriter`.
    pub fn new(out: impl Write + 'static) -> io::Result<ChromeTrace> {
        let mut trace = ChromeTrace {
            out: Box::new(out),
            base: Instant::now(),
            wrote_any: false,
            finished: false,
            error: None,
            iteration: None,
            phase: None,
            callback: None,
        };
        trace.out.write_all(b"{\"traceEvents\":[\n")?;
        trace.meta("process_name", "oneloop");
        trace.meta("thread_name", "loop");
        Ok(trace)
    }

    /// Closes any open span at `now_ns`, writes the end of the JSON and flushes.
    pub fn finish(&mut self, now_ns: u64) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.iteration_end(now_ns);
        self.finished = true;
        let tail = self
            .out
            .write_all(b"\n]}\n")
            .and_then(|()| self.out.flush());
        match self.error.take() {
            Some(e) => Err(e),
            None => tail,
        }
    }

    // Hooks called by the loop's observer; times are ns since the loop was created.

    pub(crate) fn iteration_begin(&mut self, now: u64, iteration: u64) {
        self.close_phase(now);
        self.iteration = Some((iteration, now));
    }

    pub(crate) fn iteration_end(&mut self, now: u64) {
        self.close_phase(now);
        if let Some((n, start)) = self.iteration.take() {
            self.complete(format_args!("iteration {n}"), "iteration", start, now, n);
        }
    }

    pub(crate) fn phase(&mut self, now: u64, iteration: u64, phase: Phase) {
        self.close_phase(now);
        self.phase = Some((phase, iteration, now));
    }

    pub(crate) fn callback(&mut self, now: u64, iteration: u64, phase: Phase, kind: CallbackKind) {
        if !matches!(self.phase, Some((p, _, _)) if p == phase) {
            // Main and before-exit are entered without a phase event.
            self.phase(now, iteration, phase);
        }
        self.close_callback(now);
        self.callback = Some((kind, now));
    }

    pub(crate) fn wait(&mut self, start: u64, end: u64, iteration: u64) {
        self.complete("wait", "wait", start, end, iteration);
    }

    pub(crate) fn queues(&mut self, now: u64, d: QueueDepths) {
        self.line(|out| {
            write!(
                out,
                "{{\"name\":\"queues\",\"ph\":\"C\",\"ts\":{},\"pid\":1,\"tid\":1,\"args\":{{\"next_tick\":{},\"microtasks\":{},\"immediates\":{},\"timers\":{},\"pool_queued\":{}}}}}",
                Micros(now),
                d.next_tick,
                d.microtasks,
                d.immediates,
                d.timers,
                d.pool_queued
            )
        });
    }

    fn close_callback(&mut self, now: u64) {
        if let Some((kind, start)) = self.callback.take() {
            let iteration = self.phase.map_or(0, |(_, n, _)| n);
            self.complete(kind.name(), "callback", start, now, iteration);
        }
    }

    fn close_phase(&mut self, now: u64) {
        self.close_callback(now);
        if let Some((phase, n, start)) = self.phase.take() {
            self.complete(phase.name(), "phase", start, now, n);
        }
    }

    fn complete(
        &mut self,
        name: impl std::fmt::Display,
        cat: &str,
        start: u64,
        end: u64,
        iteration: u64,
    ) {
        self.line(|out| {
            write!(
                out,
                "{{\"name\":\"{name}\",\"cat\":\"{cat}\",\"ph\":\"X\",\"ts\":{},\"dur\":{},\"pid\":1,\"tid\":1,\"args\":{{\"iteration\":{iteration}}}}}",
                Micros(start),
                Micros(end.saturating_sub(start))
            )
        });
    }

    fn meta(&mut self, name: &str, value: &str) {
        self.line(|out| {
            write!(
                out,
                "{{\"name\":\"{name}\",\"ph\":\"M\",\"pid\":1,\"tid\":1,\"args\":{{\"name\":\"{value}\"}}}}"
            )
        });
    }

    /// Writes one event (formatted straight into the buffer, no `String` per event).
    fn line(&mut self, event: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        if self.error.is_some() || self.finished {
            return;
        }
        let sep: &[u8] = if self.wrote_any { b",\n" } else { b"" };
        self.wrote_any = true;
        let out: &mut dyn Write = &mut self.out;
        let result = out.write_all(sep).and_then(|()| event(out));
        if let Err(e) = result {
            log::warn!("chrome trace stopped: {e}");
            self.error = Some(e);
        }
    }
}

impl Drop for ChromeTrace {
    fn drop(&mut self) {
        let now = self.base.elapsed().as_nanos() as u64;
        let _ = self.finish(now);
    }
}

/// Nanoseconds printed as microseconds with three decimals (exact: no float rounding).
struct Micros(u64);

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_are_exact_decimals() {
        assert_eq!(Micros(1_234_567).to_string(), "1234.567");
        assert_eq!(Micros(5).to_string(), "0.005");
    }
}
