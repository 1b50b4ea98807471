//! Looking into a loop: why it is alive, per-phase metrics, Chrome traces.
//!
//! Each of these is off until asked for; none of them changes what the loop does.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::chrome_trace::ChromeTrace;
use crate::event_loop::ActiveHandle;
use crate::handle::TimerId;
use crate::metrics::LoopStats;
use crate::Loop;

fn location(at: &std::panic::Location<'_>) -> Option<String> {
    Some(format!("{}:{}", at.file(), at.line()))
}

impl Loop {
    // ---------------------------------------------------------------------------------------
    // Why alive
    // ---------------------------------------------------------------------------------------

    /// The handles and requests that keep the loop alive, with where they were created (Node's
    /// `process.getActiveResourcesInfo()`, plus locations): ref'd timers, intervals, immediates,
    /// signal watchers, sockets and servers, pending thread-pool requests (`work`) and pending
    /// close callbacks (`closing`, no location). Unref'd handles are not listed.
    pub fn active_handles(&self) -> Vec<ActiveHandle> {
        let mut out = Vec::new();
        for key in self.timers.keys() {
            let Some(t) = self.timers.get(key) else {
                continue;
            };
            if t.refed {
                out.push(ActiveHandle {
                    kind: if t.repeat { "interval" } else { "timer" },
                    created_at: location(t.created_at),
                });
            }
        }
        for i in self.immediates.iter() {
            if i.refed && i.callback.is_some() {
                out.push(ActiveHandle {
                    kind: "immediate",
                    created_at: location(i.created_at),
                });
            }
        }
        for key in self.work.keys() {
            if let Some(w) = self.work.get(key) {
                out.push(ActiveHandle {
                    kind: "work",
                    created_at: location(w.created_at),
                });
            }
        }
        for key in self.signal_watchers.keys() {
            if let Some(s) = self.signal_watchers.get(key).filter(|s| s.refed) {
                out.push(ActiveHandle {
                    kind: "signal",
                    created_at: location(s.created_at),
                });
            }
        }
        self.net.active_handles(&mut out);
        self.asyncs.active_handles(&mut out);
        self.processes.active_handles(&mut out);
        for _ in 0..self.closing.len() {
            out.push(ActiveHandle {
                kind: "closing",
                created_at: None,
            });
        }
        out
    }

    /// A report of what keeps the loop alive, one line per handle with where it was created (as
    /// the `why-is-node-running` package prints). Empty handles list: says the loop can exit.
    ///
    /// ```
    /// use oneloop_runtime::Loop;
    /// let mut lp = Loop::with_virtual_clock()?;
    /// lp.set_interval(1000, |_| {}); // forgotten
    /// let report = lp.why_alive_report();
    /// assert!(report.contains("interval"));
    /// assert!(report.contains(file!()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn why_alive_report(&self) -> String {
        let handles = self.active_handles();
        if handles.is_empty() {
            return "oneloop: nothing keeps the loop alive\n".to_owned();
        }
        let mut s = format!(
            "oneloop: the loop is kept alive by {} handle(s) and request(s):\n",
            handles.len()
        );
        for h in handles {
            let at = h.created_at.as_deref().unwrap_or("(location unknown)");
            let _ = writeln!(s, "  {:<9} created at {at}", h.kind);
        }
        s
    }

    /// Calls `callback(lp, why_alive_report())` if the loop is still running `after` from now.
    /// The check is an unref'd timer: it never keeps the loop alive by itself, and a loop that
    /// exits in time never calls `callback`. Returns the timer, to clear it early.
    #[track_caller]
    pub fn on_alive_after(
        &mut self,
        after: Duration,
        callback: impl FnOnce(&mut Loop, String) + 'static,
    ) -> TimerId {
        let id = self.set_timeout(after, move |lp| {
            let report = lp.why_alive_report();
            callback(lp, report)
        });
        let _ = self.unref(id);
        id
    }

    /// Logs [`Loop::why_alive_report`] at `warn` level if the loop is still running `after`
    /// from now (an unref'd timer; see [`Loop::on_alive_after`]).
    #[track_caller]
    pub fn warn_if_alive_after(&mut self, after: Duration) -> TimerId {
        self.on_alive_after(after, move |_, report| {
            log::warn!("still running after {after:?}; {report}");
        })
    }

    // ---------------------------------------------------------------------------------------
    // Metrics
    // ---------------------------------------------------------------------------------------

    /// Turns per-phase metrics on or off ([`Loop::stats`]). Turning them on starts from zero;
    /// turning them off drops them. While off they cost nothing.
    pub fn enable_metrics(&mut self, on: bool) {
        if on {
            if self.stats().is_none() {
                self.observer_mut().stats = Some(Box::default());
            }
        } else if let Some(obs) = self.observer.as_deref_mut() {
            obs.stats = None;
            self.drop_observer_if_idle();
        }
    }

    /// Per-phase metrics, while enabled ([`Loop::enable_metrics`]); `None` otherwise.
    pub fn stats(&self) -> Option<&LoopStats> {
        self.observer.as_deref()?.stats.as_deref()
    }

    // ---------------------------------------------------------------------------------------
    // Chrome traces
    // ---------------------------------------------------------------------------------------

    /// Starts writing a Chrome trace of every iteration, phase and callback to `path` (see
    /// [`ChromeTrace`]); open it in <https://ui.perfetto.dev> or `chrome://tracing`. Replaces
    /// (and finishes) any trace already running.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn start_trace_file(&mut self, path: impl AsRef<Path>) -> io::Result<()> {
        self.start_chrome_trace(ChromeTrace::create(path)?)
    }

    /// Starts writing to `trace` (for writers other than a file).
    ///
    /// # Errors
    /// When a trace already running fails to finish.
    pub fn start_chrome_trace(&mut self, mut trace: ChromeTrace) -> io::Result<()> {
        let finished = self.finish_trace();
        trace.base = self.started;
        self.observer_mut().chrome = Some(trace);
        finished
    }

    /// Finishes the running trace, if any: closes the open spans, ends the JSON and flushes.
    ///
    /// # Errors
    /// The first write error the trace met.
    pub fn finish_trace(&mut self) -> io::Result<()> {
        let Some(obs) = self.observer.as_deref_mut() else {
            return Ok(());
        };
        let now = obs.now();
        let result = match obs.chrome.take() {
            Some(mut trace) => trace.finish(now),
            None => Ok(()),
        };
        self.drop_observer_if_idle();
        result
    }
}
