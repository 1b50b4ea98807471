//! UDP on the loop, with Node `dgram` semantics: [`Loop::udp_bind`].
//!
//! A UDP socket lives in the same generational slab as TCP sockets and servers (an
//! `IoEntry::Udp`): its key is its mio token, so the poll phase routes its events the same way and
//! a stale event (for a socket closed earlier in the same batch) is ignored for free.
//!
//! # Receiving
//! Reading starts at bind, as Node's `bind` starts it: datagrams that arrive while no
//! [`Loop::udp_on_message`] callback is set are read and dropped. Each datagram is read into the
//! loop's shared 64 KiB read buffer ([`READ_BUFFER_SIZE`]), so an idle socket holds no buffer.
//! Every datagram a UDP socket can receive fits: the largest IPv4 payload is 65,507 bytes and the
//! largest IPv6 payload without a jumbogram extension 65,527. A larger one (an IPv6 jumbogram,
//! which needs an interface MTU above 64 KiB) would be truncated to 64 KiB by the kernel. At most
//! [`MAX_DATAGRAMS_PER_EVENT`] datagrams are read per readiness event (libuv reads 32); the rest
//! are read in the next iteration's pending phase, so a flooded socket cannot starve the loop.
//!
//! # Sending
//! [`Loop::udp_send`] tries `sendto` at once when nothing is queued; if the kernel's send
//! buffer is full (`WouldBlock`), the datagram is copied into the socket's send queue and sent
//! when the socket is writable. The callback never runs inside `udp_send`: a send the kernel
//! took (or refused) at once reports two ticks later, where Node's `socket.send` reports it
//! (after its address lookup's tick; golden-tested), and a queued send reports from the poll
//! phase that flushed it. The queue is not
//! bounded (Node's is not either): only this process's code fills it, not a peer, and
//! [`Loop::udp_send_queue_size`] reports it (libuv's `uv_udp_get_send_queue_size`) for code
//! that wants to throttle itself.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::Location;

use socket2::{Domain, Protocol, Socket, Type};

use crate::handle::{HandleError, UdpId};
use crate::tcp::{IoEntry, Net, READ_BUFFER_SIZE};
use crate::trace::CallbackKind;
use crate::Loop;

/// Datagrams read per readiness event before the loop moves on (libuv's `uv__udp_recvmsg`
/// reads 32).
pub const MAX_DATAGRAMS_PER_EVENT: usize = 32;

/// Options for [`Loop::udp_bind`] (Node's `dgram.createSocket` options).
#[derive(Clone, Debug, Default)]
pub struct UdpOptions {
    /// `SO_REUSEADDR` (Node's `reuseAddr`): several sockets may bind the same address, as
    /// multicast receivers on one host do.
    pub reuse_addr: bool,
    /// For an IPv6 address: `IPV6_V6ONLY` (Node's `ipv6Only`).
    pub ipv6_only: bool,
    /// `SO_RCVBUF` in bytes (Node's `recvBufferSize`); the kernel default when `None`.
    pub recv_buffer_size: Option<usize>,
    /// `SO_SNDBUF` in bytes (Node's `sendBufferSize`); the kernel default when `None`.
    pub send_buffer_size: Option<usize>,
}

/// Why a UDP operation failed.
#[derive(Debug)]
pub enum UdpError {
    /// The socket is gone (closed).
    Stale,
    /// The operating system refused.
    Io(io::Error),
}

impl fmt::Display for UdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UdpError::Stale => f.write_str("stale handle: the UDP socket is closed"),
            UdpError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UdpError {}

impl From<io::Error> for UdpError {
    fn from(e: io::Error) -> UdpError {
        UdpError::Io(e)
    }
}

impl From<HandleError> for UdpError {
    fn from(_: HandleError) -> UdpError {
        UdpError::Stale
    }
}

type MessageCallback = Box<dyn FnMut(&mut Loop, &[u8], SocketAddr)>;
type SendCallback = Box<dyn FnOnce(&mut Loop, io::Result<usize>)>;

/// A datagram waiting for the socket to become writable.
struct QueuedSend {
    data: Vec<u8>,
    to: SocketAddr,
    on_sent: SendCallback,
}

/// One bound UDP socket.
pub(crate) struct Udp {
    socket: mio::net::UdpSocket,
    on_message: Option<MessageCallback>,
    queue: VecDeque<QueuedSend>,
    queued_bytes: usize,
    pub(crate) refed: bool,
    pub(crate) created_at: &'static Location<'static>,
}

impl Net {
    fn udp(&self, id: UdpId) -> Option<&Udp> {
        match self.entries.get(id.0) {
            Some(IoEntry::Udp(u)) => Some(u),
            _ => None,
        }
    }

    fn udp_mut(&mut self, id: UdpId) -> Option<&mut Udp> {
        match self.entries.get_mut(id.0) {
            Some(IoEntry::Udp(u)) => Some(u),
            _ => None,
        }
    }

    pub(crate) fn udp_refed(&self, id: UdpId) -> Option<bool> {
        self.udp(id).map(|u| u.refed)
    }

    pub(crate) fn udp_refed_mut(&mut self, id: UdpId) -> Option<&mut bool> {
        self.udp_mut(id).map(|u| &mut u.refed)
    }
}

fn canceled() -> io::Error {
    io::Error::from_raw_os_error(libc::ECANCELED)
}

impl Loop {
    /// Binds a UDP socket to `addr` (Node's `dgram.createSocket` + `bind`; port 0 picks a free
    /// port, see [`Loop::udp_local_addr`]) and starts receiving. The socket is ref'd: while it is
    /// open, `run` does not return (as in Node); [`Loop::unref`] it to let the loop exit.
    ///
    /// ```
    /// use oneloop_runtime::{Loop, UdpOptions};
    /// let mut lp = Loop::new()?;
    /// let a = lp.udp_bind("127.0.0.1:0".parse()?, UdpOptions::default())?;
    /// let b = lp.udp_bind("127.0.0.1:0".parse()?, UdpOptions::default())?;
    /// lp.udp_on_message(b, move |lp, data, from| {
    ///     println!("{} bytes from {from}", data.len());
    ///     lp.udp_close(a, |_| {}).unwrap();
    ///     lp.udp_close(b, |_| {}).unwrap();
    /// })?;
    /// let to = lp.udp_local_addr(b)?;
    /// lp.udp_send(a, b"ping", to, |_lp, sent| assert_eq!(sent.unwrap(), 4))?;
    /// lp.run()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// If the socket cannot be created, configured or bound (`EADDRINUSE`, `EACCES`, ...).
    #[track_caller]
    pub fn udp_bind(&mut self, addr: SocketAddr, options: UdpOptions) -> io::Result<UdpId> {
        let created_at = Location::caller();
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if options.reuse_addr {
            socket.set_reuse_address(true)?;
        }
        if addr.is_ipv6() {
            socket.set_only_v6(options.ipv6_only)?;
        }
        if let Some(n) = options.recv_buffer_size {
            socket.set_recv_buffer_size(n)?;
        }
        if let Some(n) = options.send_buffer_size {
            socket.set_send_buffer_size(n)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        let socket = mio::net::UdpSocket::from_std(socket.into());
        let key = self.net.entries.insert(IoEntry::Udp(Box::new(Udp {
            socket,
            on_message: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            refed: true,
            created_at,
        })));
        // Registered once for both directions (edge-triggered: no cost while nothing is queued).
        let registered = match self.net.entries.get_mut(key) {
            Some(IoEntry::Udp(u)) => self.poll.registry().register(
                &mut u.socket,
                Loop::token_of(key),
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            ),
            _ => Ok(()),
        };
        if let Err(e) = registered {
            self.net.entries.remove(key);
            return Err(e);
        }
        self.refs += 1;
        Ok(UdpId(key))
    }

    /// Calls `on_message(lp, data, peer)` for each datagram received (Node's
    /// `socket.on('message')`), in the poll phase; `data` borrows the loop's read buffer for the
    /// call. Replaces an earlier callback.
    ///
    /// # Errors
    /// [`UdpError::Stale`] if the socket is closed.
    pub fn udp_on_message(
        &mut self,
        id: UdpId,
        on_message: impl FnMut(&mut Loop, &[u8], SocketAddr) + 'static,
    ) -> Result<(), UdpError> {
        let u = self.net.udp_mut(id).ok_or(UdpError::Stale)?;
        u.on_message = Some(Box::new(on_message));
        Ok(())
    }

    /// Sends one datagram to `to` (Node's `socket.send`); `on_sent(lp, Ok(bytes))` runs once the
    /// kernel took it, or with the error (`EMSGSIZE`, `ENETUNREACH`, ...; `ECANCELED` if the
    /// socket is closed first). Never from inside `udp_send`: a send completed at once reports
    /// two ticks later, after the ticks already queued (Node's order), a queued one from the
    /// poll phase that sends it. Datagrams are sent in call order.
    ///
    /// # Errors
    /// [`UdpError::Stale`] if the socket is closed (`on_sent` is dropped uncalled).
    pub fn udp_send(
        &mut self,
        id: UdpId,
        data: &[u8],
        to: SocketAddr,
        on_sent: impl FnOnce(&mut Loop, io::Result<usize>) + 'static,
    ) -> Result<(), UdpError> {
        let u = self.net.udp_mut(id).ok_or(UdpError::Stale)?;
        if u.queue.is_empty() {
            let sent = loop {
                match u.socket.send_to(data, to) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => {
                    // Node's order: `socket.send` looks the address up first (an IP literal
                    // answers on the next tick), sends from that tick, and reports a send the
                    // kernel took at once on the tick after. So the callback runs two ticks
                    // deep: after every tick queued before `udp_send` returned, as in Node.
                    self.next_tick(move |lp| lp.next_tick(move |lp| on_sent(lp, done)));
                    return Ok(());
                }
            }
        }
        let u = self.net.udp_mut(id).ok_or(UdpError::Stale)?;
        u.queued_bytes += data.len();
        u.queue.push_back(QueuedSend {
            data: data.to_vec(),
            to,
            on_sent: Box::new(on_sent),
        });
        Ok(())
    }

    /// Bytes waiting in the socket's send queue for the kernel (libuv's
    /// `uv_udp_get_send_queue_size`); 0 unless the kernel's send buffer filled up.
    ///
    /// # Errors
    /// [`UdpError::Stale`] if the socket is closed.
    pub fn udp_send_queue_size(&self, id: UdpId) -> Result<usize, UdpError> {
        Ok(self.net.udp(id).ok_or(UdpError::Stale)?.queued_bytes)
    }

    /// The address the socket is bound to (Node's `socket.address()`).
    ///
    /// # Errors
    /// [`UdpError::Stale`] if the socket is closed.
    pub fn udp_local_addr(&self, id: UdpId) -> Result<SocketAddr, UdpError> {
        Ok(self
            .net
            .udp(id)
            .ok_or(UdpError::Stale)?
            .socket
            .local_addr()?)
    }

    /// `SO_BROADCAST` (Node's `setBroadcast`): allow sending to a broadcast address.
    ///
    /// # Errors
    /// [`UdpError::Stale`] if closed, or the OS error.
    pub fn udp_set_broadcast(&mut self, id: UdpId, on: bool) -> Result<(), UdpError> {
        Ok(self.udp_sock(id)?.set_broadcast(on)?)
    }

    /// The unicast TTL (`IP_TTL`, Node's `setTTL`), 1..=255.
    ///
    /// # Errors
    /// [`UdpError::Stale`] if closed, or the OS error (`EINVAL` out of range).
    pub fn udp_set_ttl(&mut self, id: UdpId, ttl: u32) -> Result<(), UdpError> {
        Ok(self.udp_sock(id)?.set_ttl(ttl)?)
    }

    /// The multicast TTL / hop limit (Node's `setMulticastTTL`), 0..=255.
    ///
    /// # Errors
    /// [`UdpError::Stale`] if closed, or the OS error.
    pub fn udp_set_multicast_ttl(&mut self, id: UdpId, ttl: u32) -> Result<(), UdpError> {
        let s = self.udp_sock(id)?;
        if s.local_addr()?.is_ipv6() {
            // mio has no hop-limit setter; socket2 works on the borrowed fd.
            Ok(socket2::SockRef::from(s).set_multicast_hops_v6(ttl)?)
        } else {
            Ok(s.set_multicast_ttl_v4(ttl)?)
        }
    }

    /// Whether multicast datagrams this socket sends are looped back to the host (Node's
    /// `setMulticastLoopback`).
    ///
    /// # Errors
    /// [`UdpError::Stale`] if closed, or the OS error.
    pub fn udp_set_multicast_loop(&mut self, id: UdpId, on: bool) -> Result<(), UdpError> {
        let s = self.udp_sock(id)?;
        if s.local_addr()?.is_ipv6() {
            Ok(s.set_multicast_loop_v6(on)?)
        } else {
            Ok(s.set_multicast_loop_v4(on)?)
        }
    }

    /// Joins the multicast group `group` on `interface` (Node's `addMembership`): for IPv4 the
    /// interface's address (`None` = the kernel's choice, `INADDR_ANY`); for IPv6 the interface
    /// index is 0 (the kernel's choice).
    ///
    /// # Errors
    /// [`UdpError::Stale`] if closed, or the OS error (`EINVAL` if `group` is not a multicast
    /// address, `ENODEV` if no interface can reach it, `EADDRINUSE` if already joined).
    pub fn udp_add_membership(
        &mut self,
        id: UdpId,
        group: IpAddr,
        interface: Option<Ipv4Addr>,
    ) -> Result<(), UdpError> {
        let s = self.udp_sock(id)?;
        Ok(match group {
            IpAddr::V4(g) => s.join_multicast_v4(&g, &interface.unwrap_or(Ipv4Addr::UNSPECIFIED)),
            IpAddr::V6(g) => s.join_multicast_v6(&g, 0),
        }?)
    }

    /// Leaves a multicast group joined with [`Loop::udp_add_membership`] (Node's
    /// `dropMembership`).
    ///
    /// # Errors
    /// [`UdpError::Stale`] if closed, or the OS error (`EADDRNOTAVAIL` if not a member).
    pub fn udp_drop_membership(
        &mut self,
        id: UdpId,
        group: IpAddr,
        interface: Option<Ipv4Addr>,
    ) -> Result<(), UdpError> {
        let s = self.udp_sock(id)?;
        Ok(match group {
            IpAddr::V4(g) => s.leave_multicast_v4(&g, &interface.unwrap_or(Ipv4Addr::UNSPECIFIED)),
            IpAddr::V6(g) => s.leave_multicast_v6(&g, 0),
        }?)
    }

    /// Closes the socket now (Node's `socket.close(cb)`): no more datagrams are received, queued
    /// sends complete with `ECANCELED`, and `on_close` runs in this iteration's close phase,
    /// after them. The id is stale afterwards.
    ///
    /// # Errors
    /// [`UdpError::Stale`] if it was already closed.
    pub fn udp_close(
        &mut self,
        id: UdpId,
        on_close: impl FnOnce(&mut Loop) + 'static,
    ) -> Result<(), UdpError> {
        if self.net.udp(id).is_none() {
            return Err(UdpError::Stale);
        }
        let Some(IoEntry::Udp(mut u)) = self.net.entries.remove(id.0) else {
            return Err(UdpError::Stale);
        };
        let _ = self.registry().deregister(&mut u.socket);
        if u.refed {
            self.refs -= 1;
        }
        for q in u.queue.drain(..) {
            let on_sent = q.on_sent;
            self.queue_close(move |lp| on_sent(lp, Err(canceled())));
        }
        self.queue_close(on_close);
        Ok(())
    }

    fn udp_sock(&self, id: UdpId) -> Result<&mio::net::UdpSocket, UdpError> {
        Ok(&self.net.udp(id).ok_or(UdpError::Stale)?.socket)
    }

    /// A readiness event for a UDP socket.
    pub(crate) fn udp_event(&mut self, id: UdpId, event: &mio::event::Event) {
        if event.is_readable() {
            self.udp_read(id);
        }
        if event.is_writable() && self.net.udp(id).is_some_and(|u| !u.queue.is_empty()) {
            self.udp_flush(id);
        }
    }

    /// Reads up to [`MAX_DATAGRAMS_PER_EVENT`] datagrams; if more may be waiting, continues in
    /// the next pending phase (edge-triggered: no new event would report them).
    fn udp_read(&mut self, id: UdpId) {
        let mut buf = std::mem::take(&mut self.net.read_buf);
        if buf.len() < READ_BUFFER_SIZE {
            buf.resize(READ_BUFFER_SIZE, 0);
        }
        let mut reads = 0;
        while let Some(u) = self.net.udp_mut(id) {
            if reads == MAX_DATAGRAMS_PER_EVENT {
                self.defer(move |lp| lp.udp_read(id));
                break;
            }
            reads += 1;
            let (n, peer) = match u.socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // An ICMP error queued on the socket (e.g. ECONNREFUSED): reported by Node
                    // as 'error' on connected sockets only; here logged, and reading goes on.
                    log::debug!("udp recv error: {e}");
                    continue;
                }
            };
            let Some(mut on_message) = u.on_message.take() else {
                continue; // no listener: dropped, as Node drops an unheard 'message'
            };
            self.trace_callback(CallbackKind::Io);
            self.invoke(CallbackKind::Io, |lp| on_message(lp, &buf[..n], peer));
            if let Some(u) = self.net.udp_mut(id) {
                if u.on_message.is_none() {
                    u.on_message = Some(on_message);
                }
            }
            self.after_callback();
        }
        self.net.read_buf = buf;
    }

    /// Sends queued datagrams until the queue is empty or the kernel's buffer is full.
    fn udp_flush(&mut self, id: UdpId) {
        while let Some(u) = self.net.udp_mut(id) {
            let Some(front) = u.queue.front() else {
                break;
            };
            let result = match u.socket.send_to(&front.data, front.to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other,
            };
            let Some(q) = u.queue.pop_front() else {
                break;
            };
            u.queued_bytes -= q.data.len();
            // An I/O callback of this poll phase, as libuv runs a queued send's completion
            // from the socket's writable event.
            let on_sent = q.on_sent;
            self.trace_callback(CallbackKind::Io);
            self.invoke(CallbackKind::Io, |lp| on_sent(lp, result));
            self.after_callback();
        }
    }
}
