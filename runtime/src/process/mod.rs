//! Child processes on the loop (libuv's `uv_spawn`/`uv_process_t`, Node's
//! `child_process.spawn`).
//!
//! - **stdio.** Each piped stdio stream is one end of a socketpair (`UnixStream::pair`, as
//!   libuv does), the other end handed to the child. The parent's end is registered as an
//!   ordinary stream socket (see `tcp/stream.rs`), so a child's stdin, stdout and stderr are
//!   plain [`TcpId`]s: `tcp_on_data`, `tcp_on_end`, `tcp_write` (-> bool against the 64 KiB
//!   high-water mark), `tcp_on_drain`, `tcp_end` (the child reads EOF), `tcp_pause`.
//! - **Exit.** The loop watches `SIGCHLD` through its signal pipe (signal.rs). Signals
//!   coalesce (two children exiting together may raise one `SIGCHLD`), so on each one every
//!   child not yet reaped is polled with `try_wait` (`waitpid(pid, WNOHANG)`): only our own
//!   pids, never `waitpid(-1)`, so children spawned by other code (`std::process::Command`
//!   elsewhere in the program) are left alone.
//! - **Events, as Node** (lib/internal/child_process.js). `on_exit(code, signal)` runs from
//!   the poll phase when the child is reaped (stdout may still deliver data: a grandchild can
//!   keep the pipe open); the parent's end of a piped stdin is destroyed then, as Node does.
//!   `on_close(code, signal)` runs once the child exited *and* its piped stdout and stderr
//!   closed: right after `on_exit` (before the ticks it queued, as Node emits `'close'`
//!   synchronously from the exit handler) if they already had, otherwise from the close
//!   phase after the last of them closed. Then the id goes stale.
//! - **Liveness.** A running child keeps the loop alive while ref'd (libuv: the process
//!   handle is active until exit); `unref` lets the loop exit while it runs. Piped stdio
//!   streams are sockets with their own refs, as in libuv and Node: unref them too (or use
//!   [`StdioMode::Ignore`]) for a loop that exits with the child running.
//! - **Costs and bounds.** Each `SIGCHLD` costs one `waitpid` per child not yet reaped on this
//!   loop. Output is read through the loop's shared 64 KiB read buffer like any socket (a
//!   child's stdout holds no buffer of its own); what is written to stdin is queued as on any
//!   socket (`tcp_write` returns false at the high-water mark). Dropping the loop neither
//!   kills nor waits for running children (as libuv): once they exit they stay zombies until
//!   this process exits.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::panic::Location;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::handle::{GenSlab, HandleError, ProcessId, TcpId};
use crate::tcp::SocketOptions;
use crate::trace::CallbackKind;
use crate::Loop;

/// What a child's stdin, stdout or stderr is connected to (Node's `stdio` option entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdioMode {
    /// A socketpair to the loop: a stream socket id on the parent's side.
    Pipe,
    /// The parent's own descriptor.
    Inherit,
    /// `/dev/null`.
    Ignore,
}

/// What to run and how (Node's `spawn(command, args, options)`).
#[derive(Clone, Debug)]
pub struct SpawnOptions {
    /// The program: a path, or a name looked up in `PATH`.
    pub program: OsString,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    /// Start from an empty environment instead of the parent's.
    pub env_clear: bool,
    /// Variables set on top of the inherited (or empty) environment.
    pub env: Vec<(OsString, OsString)>,
    /// The child's working directory (default: the parent's).
    pub cwd: Option<PathBuf>,
    /// stdin, stdout, stderr. Default: all three piped, as Node's default `'pipe'`.
    pub stdio: [StdioMode; 3],
}

impl SpawnOptions {
    /// `program` with `args`, the parent's environment and cwd, all stdio piped.
    pub fn new<S: Into<OsString>>(
        program: impl Into<OsString>,
        args: impl IntoIterator<Item = S>,
    ) -> SpawnOptions {
        SpawnOptions {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env_clear: false,
            env: Vec::new(),
            cwd: None,
            stdio: [StdioMode::Pipe; 3],
        }
    }
}

type ExitCallback = Box<dyn FnOnce(&mut Loop, Option<i32>, Option<i32>)>;

/// How the child ended: its exit code, or the signal that killed it.
#[derive(Clone, Copy, Debug)]
struct Exit {
    code: Option<i32>,
    signal: Option<i32>,
}

pub(crate) struct Process {
    child: Child,
    /// The parent's ends of piped stdio (stdin, stdout, stderr), `None` once closed or when
    /// not piped.
    stdio: [Option<TcpId>; 3],
    /// Set when reaped; the pid may be reused by the system from then on.
    exit: Option<Exit>,
    on_exit: Option<ExitCallback>,
    on_close: Option<ExitCallback>,
    pub(crate) refed: bool,
    created_at: &'static Location<'static>,
}

/// The children of one loop.
#[derive(Default)]
pub(crate) struct Processes {
    entries: GenSlab<Process>,
    /// SIGCHLD is routed to this loop (installed on the first spawn).
    sigchld: bool,
}

impl Processes {
    /// Children not yet closed: on a virtual clock they count as I/O (only the outside world
    /// says when a child exits, so time must follow the real wait).
    pub(crate) fn has_children(&self) -> bool {
        self.entries.len() > 0
    }

    pub(crate) fn watching_sigchld(&self) -> bool {
        self.sigchld
    }

    pub(crate) fn refed(&self, id: ProcessId) -> Option<bool> {
        self.entries.get(id.0).map(|p| p.refed)
    }

    /// Running, ref'd children (an exited child waiting for its stdio to close is kept alive
    /// by those sockets, not by itself).
    pub(crate) fn active_handles(&self, out: &mut Vec<crate::ActiveHandle>) {
        for key in self.entries.keys() {
            if let Some(p) = self.entries.get(key) {
                if p.refed && p.exit.is_none() {
                    out.push(crate::ActiveHandle {
                        kind: "process",
                        created_at: Some(format!(
                            "{}:{}",
                            p.created_at.file(),
                            p.created_at.line()
                        )),
                    });
                }
            }
        }
    }
}

/// Node's message for a failed spawn: `spawn nosuchprog ENOENT`.
fn spawn_error(program: &OsString, e: io::Error) -> io::Error {
    let name = crate::tcp::errno_name(&e);
    let msg = match name {
        Some(code) => format!("spawn {} {code}", program.to_string_lossy()),
        None => format!("spawn {}: {e}", program.to_string_lossy()),
    };
    io::Error::new(e.kind(), msg)
}

impl Loop {
    /// Starts a child process (Node's `child_process.spawn`). Its piped stdio streams are
    /// ordinary stream socket ids ([`Loop::process_stdin`], [`Loop::process_stdout`],
    /// [`Loop::process_stderr`]); [`Loop::process_on_exit`] and [`Loop::process_on_close`]
    /// report how it ended.
    ///
    /// ```
    /// use oneloop_runtime::{Loop, SpawnOptions};
    /// let mut lp = Loop::new()?;
    /// let child = lp.spawn(SpawnOptions::new("sh", ["-c", "echo hi; exit 3"]))?;
    /// let stdout = lp.process_stdout(child).expect("piped by default");
    /// lp.tcp_on_data(stdout, |_lp, _id, data| assert_eq!(data, b"hi\n"))?;
    /// lp.process_on_exit(child, |_lp, code, signal| {
    ///     assert_eq!((code, signal), (Some(3), None));
    /// })?;
    /// lp.run()?; // returns once the child exited and its stdio closed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// When the child cannot be started, with Node's message: `spawn nosuchprog ENOENT` (kind
    /// `NotFound`) for a missing program, `spawn ./file EACCES` for one not executable, and
    /// so on (Node reports these through an `'error'` event; here `spawn` returns them). No
    /// process, socket or callback is left behind.
    #[track_caller]
    pub fn spawn(&mut self, options: SpawnOptions) -> io::Result<ProcessId> {
        self.processes_watch_sigchld()?;
        let mut cmd = Command::new(&options.program);
        cmd.args(&options.args);
        if options.env_clear {
            cmd.env_clear();
        }
        cmd.envs(options.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &options.cwd {
            cmd.current_dir(cwd);
        }
        let mut parent_ends: [Option<UnixStream>; 3] = [None, None, None];
        for (fd, mode) in options.stdio.iter().enumerate() {
            let stdio = match mode {
                StdioMode::Inherit => Stdio::inherit(),
                StdioMode::Ignore => Stdio::null(),
                StdioMode::Pipe => {
                    let (ours, theirs) = UnixStream::pair()?;
                    parent_ends[fd] = Some(ours);
                    Stdio::from(OwnedFd::from(theirs))
                }
            };
            match fd {
                0 => cmd.stdin(stdio),
                1 => cmd.stdout(stdio),
                _ => cmd.stderr(stdio),
            };
        }
        let spawned = cmd.spawn();
        // The child's ends live in `cmd`: close them here, or we would never read EOF.
        drop(cmd);
        let child = spawned.map_err(|e| spawn_error(&options.program, e))?;
        let key = self.processes.entries.insert(Process {
            child,
            stdio: [None; 3],
            exit: None,
            on_exit: None,
            on_close: None,
            refed: true,
            created_at: Location::caller(),
        });
        let id = ProcessId(key);
        self.refs += 1;
        for (fd, end) in parent_ends.into_iter().enumerate() {
            let Some(end) = end else { continue };
            match self.pipe_adopt(end, SocketOptions::default()) {
                Ok(sock) => {
                    self.net_set_process(sock, Some(id));
                    if let Some(p) = self.processes.entries.get_mut(key) {
                        p.stdio[fd] = Some(sock);
                    }
                }
                // The child runs without this stream (it sees EOF or EPIPE on it).
                Err(e) => log::warn!("child stdio {fd} could not be registered: {e}"),
            }
        }
        // A child that exited before SIGCHLD was routed to us cannot exist (the watch is
        // installed above), but a poll costs nothing and covers a SIGCHLD consumed elsewhere.
        self.defer(|lp| lp.processes_reap());
        Ok(id)
    }

    /// The parent's end of the child's stdin, if piped and still open: write to it with
    /// [`Loop::tcp_write`] (false = over the high-water mark, wait for `tcp_on_drain`), and
    /// [`Loop::tcp_end`] it so the child reads EOF.
    pub fn process_stdin(&self, id: ProcessId) -> Option<TcpId> {
        self.process_stdio(id, 0)
    }

    /// The parent's end of the child's stdout, if piped and still open: read it with
    /// [`Loop::tcp_on_data`] / [`Loop::tcp_on_end`].
    pub fn process_stdout(&self, id: ProcessId) -> Option<TcpId> {
        self.process_stdio(id, 1)
    }

    /// The parent's end of the child's stderr, if piped and still open.
    pub fn process_stderr(&self, id: ProcessId) -> Option<TcpId> {
        self.process_stdio(id, 2)
    }

    fn process_stdio(&self, id: ProcessId, fd: usize) -> Option<TcpId> {
        self.processes.entries.get(id.0).and_then(|p| p.stdio[fd])
    }

    /// The child's process id (Node's `child.pid`), until it has been reaped.
    pub fn process_pid(&self, id: ProcessId) -> Option<u32> {
        self.processes
            .entries
            .get(id.0)
            .filter(|p| p.exit.is_none())
            .map(|p| p.child.id())
    }

    /// Calls `callback(lp, code, signal)` when the child exits (Node's `'exit'`): `code` if it
    /// exited, `signal` (e.g. 15 for SIGTERM) if a signal killed it. Its stdout may still be
    /// delivering data; see [`Loop::process_on_close`].
    ///
    /// # Errors
    /// [`HandleError::Stale`] if the process is gone (already closed).
    pub fn process_on_exit(
        &mut self,
        id: ProcessId,
        callback: impl FnOnce(&mut Loop, Option<i32>, Option<i32>) + 'static,
    ) -> Result<(), HandleError> {
        let p = self
            .processes
            .entries
            .get_mut(id.0)
            .ok_or(HandleError::Stale)?;
        p.on_exit = Some(Box::new(callback));
        Ok(())
    }

    /// Calls `callback(lp, code, signal)` once the child has exited and its piped stdout and
    /// stderr have closed (Node's `'close'`): right after `on_exit` if they already had,
    /// else from the close phase after the last one closed. The id is stale by then.
    ///
    /// # Errors
    /// [`HandleError::Stale`] if the process is gone.
    pub fn process_on_close(
        &mut self,
        id: ProcessId,
        callback: impl FnOnce(&mut Loop, Option<i32>, Option<i32>) + 'static,
    ) -> Result<(), HandleError> {
        let p = self
            .processes
            .entries
            .get_mut(id.0)
            .ok_or(HandleError::Stale)?;
        p.on_close = Some(Box::new(callback));
        Ok(())
    }

    /// Sends `signal` (e.g. 15 for SIGTERM) to the child (Node's `child.kill(signal)`).
    /// Returns `false` if the child was already reaped: its pid may belong to another
    /// process by now, so nothing is sent.
    ///
    /// # Errors
    /// `InvalidInput` for a stale id or an unknown signal number; the OS error from `kill`.
    pub fn process_kill(&mut self, id: ProcessId, signal: i32) -> io::Result<bool> {
        let p =
            self.processes.entries.get(id.0).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "stale process handle")
            })?;
        if p.exit.is_some() {
            return Ok(false);
        }
        let sig = rustix::process::Signal::from_named_raw(signal).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown signal {signal}"),
            )
        })?;
        rustix::process::kill_process(rustix::process::Pid::from_child(&p.child), sig)?;
        Ok(true)
    }

    /// Children spawned on this loop not yet closed (running, or exited with stdio open).
    pub fn process_count(&self) -> usize {
        self.processes.entries.len()
    }

    /// `ref_`/`unref` for a process: only a running child holds a ref.
    pub(crate) fn process_set_ref(
        &mut self,
        id: ProcessId,
        refed: bool,
    ) -> Result<(), HandleError> {
        let p = self
            .processes
            .entries
            .get_mut(id.0)
            .ok_or(HandleError::Stale)?;
        if p.refed != refed {
            p.refed = refed;
            if p.exit.is_none() {
                if refed {
                    self.refs += 1;
                } else {
                    self.refs -= 1;
                }
            }
        }
        Ok(())
    }

    fn processes_watch_sigchld(&mut self) -> io::Result<()> {
        if !self.processes.sigchld {
            self.signal_add(libc::SIGCHLD)?;
            self.processes.sigchld = true;
        }
        Ok(())
    }

    /// On SIGCHLD (or after a spawn): reap every child of this loop that has exited, and run
    /// its `on_exit`.
    pub(crate) fn processes_reap(&mut self) {
        let keys: Vec<_> = self.processes.entries.keys().collect();
        for key in keys {
            let Some(p) = self.processes.entries.get_mut(key) else {
                continue;
            };
            if p.exit.is_some() {
                continue;
            }
            let status = match p.child.try_wait() {
                Ok(Some(status)) => status,
                Ok(None) => continue,
                Err(e) => {
                    log::warn!("waitpid({}) failed: {e}", p.child.id());
                    continue;
                }
            };
            let exit = Exit {
                code: status.code(),
                signal: status.signal(),
            };
            p.exit = Some(exit);
            if p.refed {
                self.refs -= 1;
            }
            let id = ProcessId(key);
            let stdin = p.stdio[0].take();
            if let Some(stdin) = stdin {
                // Detached first: its close must not count toward this process's close,
                // which has not even run `on_exit` yet.
                self.net_set_process(stdin, None);
                let _ = self.tcp_destroy(stdin);
            }
            let Some(p) = self.processes.entries.get_mut(key) else {
                continue;
            };
            let on_exit = p.on_exit.take();
            if on_exit.is_some() || p.on_close.is_some() {
                self.trace_callback(CallbackKind::Process);
                self.invoke(CallbackKind::Process, |lp| {
                    if let Some(cb) = on_exit {
                        cb(lp, exit.code, exit.signal);
                    }
                    // Node emits 'close' from the exit handler itself when stdout and stderr
                    // are already closed: same callback slot, so ticks queued by `on_exit`
                    // run after both.
                    lp.process_close_now(id);
                });
                self.after_callback();
            }
            self.process_maybe_close(id);
        }
    }

    /// A piped stdio socket of `id` closed.
    pub(crate) fn process_stdio_closed(&mut self, id: ProcessId, sock: TcpId) {
        if let Some(p) = self.processes.entries.get_mut(id.0) {
            for slot in p.stdio.iter_mut() {
                if *slot == Some(sock) {
                    *slot = None;
                }
            }
        }
        self.process_maybe_close(id);
    }

    /// If exited with stdout and stderr closed: free the slot and run `on_close` now.
    fn process_close_now(&mut self, id: ProcessId) {
        let done = self
            .processes
            .entries
            .get(id.0)
            .is_some_and(|p| p.exit.is_some() && p.stdio.iter().all(Option::is_none));
        if !done {
            return;
        }
        if let Some(mut p) = self.processes.entries.remove(id.0) {
            let exit = p.exit.expect("checked above");
            if let Some(cb) = p.on_close.take() {
                cb(self, exit.code, exit.signal);
            }
        }
    }

    /// Once exited with every stdio stream closed: free the slot and queue `on_close`.
    fn process_maybe_close(&mut self, id: ProcessId) {
        let done = self
            .processes
            .entries
            .get(id.0)
            .is_some_and(|p| p.exit.is_some() && p.stdio.iter().all(Option::is_none));
        if !done {
            return;
        }
        let Some(mut p) = self.processes.entries.remove(id.0) else {
            return;
        };
        let exit = p.exit.expect("checked above");
        if let Some(cb) = p.on_close.take() {
            self.queue_close(move |lp| cb(lp, exit.code, exit.signal));
        }
    }
}
