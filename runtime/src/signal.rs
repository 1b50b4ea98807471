//! Signals on the loop (libuv's `uv_signal_t`), on signal-hook's mio support.
//!
//! signal-hook's handler writes to a self-pipe registered with the loop's poller under
//! `SIGNAL_TOKEN`; the poll phase reads which signals arrived and calls their watchers. A signal
//! that arrives while no watcher for it exists gets its default action (signal-hook keeps its
//! handler installed once added, so we emulate the default: SIGINT still ends the process).

use std::collections::HashSet;
use std::io;

use mio::Interest;
use signal_hook_mio::v1_0::Signals as HookSignals;

use crate::event_loop::SIGNAL_TOKEN;
use crate::trace::CallbackKind;
use crate::Loop;

pub(crate) struct Signals {
    hook: HookSignals,
    installed: HashSet<i32>,
}

impl Loop {
    pub(crate) fn signal_add(&mut self, signum: i32) -> io::Result<()> {
        if self.signals.is_none() {
            let mut hook = HookSignals::new(std::iter::empty::<i32>())?;
            self.register(&mut hook, SIGNAL_TOKEN, Interest::READABLE)?;
            self.signals = Some(Signals {
                hook,
                installed: HashSet::new(),
            });
        }
        let signals = self.signals.as_mut().expect("just created");
        if signals.installed.insert(signum) {
            if let Err(e) = signals.hook.add_signal(signum) {
                signals.installed.remove(&signum);
                return Err(e);
            }
        }
        Ok(())
    }

    pub(crate) fn dispatch_signals(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        let arrived: Vec<i32> = signals.hook.pending().collect();
        for signum in arrived {
            if signum == libc::SIGCHLD && self.processes.watching_sigchld() {
                self.processes_reap();
            }
            let watchers: Vec<_> = self
                .signal_watchers
                .keys()
                .filter(|k| {
                    self.signal_watchers
                        .get(*k)
                        .is_some_and(|w| w.signum == signum)
                })
                .collect();
            if watchers.is_empty() {
                // Nobody listens: behave as if we had never installed a handler.
                let _ = signal_hook::low_level::emulate_default_handler(signum);
                continue;
            }
            for key in watchers {
                let Some(mut cb) = self
                    .signal_watchers
                    .get_mut(key)
                    .and_then(|w| w.callback.take())
                else {
                    continue;
                };
                self.trace_callback(CallbackKind::Signal);
                self.invoke(CallbackKind::Signal, |lp| cb(lp, signum));
                if let Some(w) = self.signal_watchers.get_mut(key) {
                    w.callback = Some(cb);
                }
                self.after_callback();
            }
        }
    }
}
