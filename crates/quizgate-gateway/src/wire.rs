//! A connection's socket, shared by its task and the fan-out.
//!
//! A broadcast is the same WebSocket frame for every connection of an
//! encoding (server frames are not masked), so the fan-out writes those bytes
//! straight into each socket with one non-blocking `write(2)`, without waking
//! the connection's task. Everything else the task writes (welcomes, replies,
//! pings, closes, tungstenite's pongs) goes through the same [`Wire`], so that
//! bytes reach the socket in the order they were accepted and whole frames
//! never interleave. What the socket cannot take at once waits in the wire's
//! pending bytes, in order, and the task is woken to write them when the
//! socket is writable.
//!
//! An event goes straight to the socket only once the connection is live (its
//! welcome, and on a resume the events it missed, have been written), while
//! its task is not handling a request (the reply comes first), and when no
//! earlier event waits in its queue; otherwise it goes to the queue, and the
//! task writes it from there, in sequence order, skipping what the client's
//! snapshot already held.
//!
//! On a TLS connection (see `crate::tls`) the wire holds the connection's
//! rustls state too: bytes are encrypted as they are accepted, and what the
//! socket cannot take waits as TLS records in rustls's buffer (bounded the
//! same way) instead of in `pending`.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::frames::{Reading, Seen};

/// Bytes that may wait for a slow socket before its connection is evicted.
const MAX_PENDING: usize = 256 * 1024;

#[derive(Debug)]
pub(crate) struct Wire {
    tcp: TcpStream,
    out: Mutex<Out>,
    /// `bytes_out_total`: every byte handed to the socket (before TLS).
    bytes_out: prometheus::IntCounter,
    /// Wakes the connection's task: bytes wait for the socket.
    pub(crate) wake: Notify,
}

#[derive(Debug, Default)]
struct Out {
    /// Accepted but not yet written, oldest first.
    pending: Vec<u8>,
    /// The welcome has gone out: events may be written by the fan-out.
    live: bool,
    /// The task is handling a request: events wait in the queue, so that its
    /// reply comes before any broadcast the request caused.
    busy: bool,
    /// The last event's sequence number this client has (sent or in its snapshot).
    last_seq: u64,
    /// Items in the connection's queue not yet written by its task.
    queued: usize,
    /// A write failed: the task will find the connection gone.
    broken: bool,
    /// The TLS session, on a TLS connection.
    tls: Option<Box<rustls::ServerConnection>>,
    /// Bytes read to tell WebSocket from HTTP, or read past the end of a
    /// handshake request, given back to the next read.
    unread: Vec<u8>,
    /// What the bytes read are: see `frames.rs`.
    reading: Reading,
    /// The TLS close_notify has been queued.
    closing: bool,
}

/// What became of an event offered to a connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Written (or waiting in order in the wire), or already had, or the
    /// connection is going: nothing more to do.
    Done,
    /// Put it in the connection's queue (counted there already).
    Queue,
    /// The client does not keep up: evict it.
    Slow,
}

impl Wire {
    pub(crate) fn new(tcp: TcpStream, bytes_out: prometheus::IntCounter) -> Arc<Self> {
        Arc::new(Self {
            tcp,
            out: Mutex::default(),
            bytes_out,
            wake: Notify::new(),
        })
    }

    /// A wire for a TLS connection whose handshake is done.
    pub(crate) fn new_tls(
        tcp: TcpStream,
        mut tls: rustls::ServerConnection,
        bytes_out: prometheus::IntCounter,
    ) -> Arc<Self> {
        tls.set_buffer_limit(Some(MAX_PENDING));
        Arc::new(Self {
            tcp,
            bytes_out,
            out: Mutex::new(Out {
                tls: Some(Box::new(tls)),
                ..Out::default()
            }),
            wake: Notify::new(),
        })
    }

    /// Gives back bytes already read: the next reads return them first.
    pub(crate) fn unread(&self, bytes: &[u8]) {
        let mut out = self.out();
        let mut back = bytes.to_vec();
        back.extend_from_slice(&out.unread);
        out.unread = back;
    }

    /// From now on, reads stop at the end of the WebSocket handshake request,
    /// and the frames after it are walked (see `frames.rs`).
    pub(crate) fn begin_handshake(&self, frames_per_second: u32) {
        // `line: 1`: the sniff's bytes are given back first, so the request
        // line is read from its start, and is not empty.
        self.out().reading = Reading::Handshake {
            line: 1,
            frames_per_second,
        };
    }

    /// Looks at what a read just put in `buf` after `before` (see [`Reading`]).
    fn seen(&self, buf: &mut ReadBuf<'_>, before: usize) -> io::Result<()> {
        let mut out = self.out();
        let out = &mut *out;
        if let Seen::UpTo(n) = out.reading.see(&buf.filled()[before..])? {
            let end = before + n;
            let mut back = buf.filled()[end..].to_vec();
            back.extend_from_slice(&out.unread);
            out.unread = back;
            buf.set_filled(end);
        }
        Ok(())
    }

    /// The lock is never held across an await, so a poisoned one is consistent.
    fn out(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `bytes` now if nothing waits before them; what the socket does
    /// not take waits, in order, and the task is woken to write it.
    fn put(&self, out: &mut Out, bytes: &[u8]) -> io::Result<()> {
        if out.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.bytes_out.inc_by(bytes.len() as u64);
        if let Some(tls) = out.tls.as_mut() {
            // Encrypted now, in order; rustls keeps what the socket does not take.
            let taken = io::Write::write(&mut tls.writer(), bytes)?;
            if taken < bytes.len() {
                return Err(io::Error::other("the client does not read fast enough"));
            }
            return match write_tls(&self.tcp, tls) {
                Ok(()) => {
                    if tls.wants_write() {
                        self.wake.notify_one();
                    }
                    Ok(())
                }
                Err(e) => {
                    out.broken = true;
                    Err(e)
                }
            };
        }
        let mut rest = bytes;
        if out.pending.is_empty() {
            match self.tcp.try_write(bytes) {
                Ok(n) => rest = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    out.broken = true;
                    return Err(e);
                }
            }
            if rest.is_empty() {
                return Ok(());
            }
            self.wake.notify_one();
        }
        if out.pending.len() + rest.len() > MAX_PENDING {
            return Err(io::Error::other("the client does not read fast enough"));
        }
        out.pending.extend_from_slice(rest);
        Ok(())
    }

    /// The fan-out's path for events `first..=last` (`n` of them, in order),
    /// as their complete frames back to back. `Queue` counts all `n` as queued:
    /// the caller queues each of them.
    pub(crate) fn offer_events(&self, first: u64, last: u64, n: usize, frames: &[u8]) -> Offer {
        self.offer(Some((first, last)), n, frames)
    }

    /// The fan-out's path for a frame for this connection alone (a standing,
    /// a progress): behind anything queued, like an event.
    pub(crate) fn offer_direct(&self, frame: &[u8]) -> Offer {
        self.offer(None, 1, frame)
    }

    /// `n` frames, events `seqs` (first, last) or one direct frame: straight
    /// out only if nothing must come before them and, for events, the client
    /// has none of them (else its task skips those one by one).
    fn offer(&self, seqs: Option<(u64, u64)>, n: usize, frames: &[u8]) -> Offer {
        let mut out = self.out();
        if out.broken {
            return Offer::Done;
        }
        if let Some((first, last)) = seqs {
            if out.live && last <= out.last_seq {
                return Offer::Done;
            }
            if out.last_seq >= first {
                out.queued += n;
                return Offer::Queue;
            }
        }
        if !out.live || out.busy || out.queued > 0 {
            out.queued += n;
            return Offer::Queue;
        }
        if let Some((_, last)) = seqs {
            out.last_seq = last;
        }
        match self.put(&mut out, frames) {
            Ok(()) => Offer::Done,
            Err(_) if out.broken => Offer::Done,
            Err(_) => Offer::Slow,
        }
    }

    /// The task's path for queued items, in queue order: each is written
    /// unless it is an event the client already has. `items` are (seq, frame).
    pub(crate) fn write_queued<'a>(
        &self,
        items: impl IntoIterator<Item = (Option<u64>, &'a [u8])>,
    ) -> io::Result<usize> {
        let mut out = self.out();
        let mut batch = Vec::new();
        let mut written = 0;
        for (seq, frame) in items {
            out.queued = out.queued.saturating_sub(1);
            if let Some(seq) = seq {
                if seq <= out.last_seq {
                    continue;
                }
                out.last_seq = seq;
            }
            batch.extend_from_slice(frame);
            written += 1;
        }
        if !batch.is_empty() {
            self.put(&mut out, &batch)?;
        }
        Ok(written)
    }

    /// The task's path for its own frames (welcomes, replayed events,
    /// replies), as complete frames: behind whatever waits, never through
    /// tungstenite, whose write buffer would keep a welcome's size for the
    /// connection's life.
    pub(crate) fn write(&self, frames: &[u8]) -> io::Result<()> {
        let mut out = self.out();
        self.put(&mut out, frames)
    }

    /// The client holds everything up to `last_seq` (its snapshot and any
    /// replayed events, all written): from now on events may go straight out.
    pub(crate) fn go_live(&self, last_seq: u64) {
        let mut out = self.out();
        out.last_seq = out.last_seq.max(last_seq);
        out.live = true;
    }

    /// While the task handles a request, events queue behind its reply.
    pub(crate) fn busy(&self, busy: bool) {
        self.out().busy = busy;
    }

    /// Back to queueing, for a connection that left its room.
    pub(crate) fn go_quiet(&self) {
        let mut out = self.out();
        out.live = false;
        out.queued = 0;
        out.last_seq = 0;
    }

    pub(crate) fn has_pending(&self) -> bool {
        let out = self.out();
        !out.pending.is_empty() || out.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes what waits, until the socket takes it all.
    fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            {
                let mut out = self.out();
                if let Some(tls) = out.tls.as_mut() {
                    if let Err(e) = write_tls(&self.tcp, tls) {
                        out.broken = true;
                        return Poll::Ready(Err(e));
                    }
                    if !tls.wants_write() {
                        return Poll::Ready(Ok(()));
                    }
                    // The socket is full: wait below until it is writable.
                } else if out.pending.is_empty() {
                    return Poll::Ready(Ok(()));
                } else {
                    match self.tcp.try_write(&out.pending) {
                        Ok(n) => {
                            out.pending.drain(..n);
                            if out.pending.is_empty() {
                                // Give back what a burst made it grow to.
                                out.pending = Vec::new();
                            }
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => {
                            out.broken = true;
                            return Poll::Ready(Err(e));
                        }
                    }
                }
            }
            ready!(self.tcp.poll_write_ready(cx))?;
        }
    }
}

/// Writes rustls's waiting TLS records until none is left or the socket
/// would block (which clears its write readiness, so waiting on it works).
fn write_tls(tcp: &TcpStream, tls: &mut rustls::ServerConnection) -> io::Result<()> {
    struct Socket<'a>(&'a TcpStream);
    impl io::Write for Socket<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.try_write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    while tls.wants_write() {
        match tls.write_tls(&mut Socket(tcp)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Drop for Wire {
    fn drop(&mut self) {
        // Best effort, without waiting: a TLS peer learns the end was meant.
        self.close_notify();
        let mut out = self.out();
        if let Some(tls) = out.tls.as_mut() {
            let _ = write_tls(&self.tcp, tls);
        }
    }
}

impl Wire {
    /// Queues a TLS close_notify (once); the next drain writes it.
    fn close_notify(&self) {
        let mut out = self.out();
        if !out.closing
            && let Some(tls) = out.tls.as_mut()
        {
            tls.send_close_notify();
            out.closing = true;
        }
    }

    /// Reads plaintext from the TLS session, reading TLS records off the
    /// socket when it has none; `Ok` with nothing read at the end.
    fn poll_read_tls(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        struct Socket<'a>(&'a TcpStream);
        impl io::Read for Socket<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.try_read(buf)
            }
        }
        loop {
            {
                let mut out = self.out();
                let Some(tls) = out.tls.as_mut() else {
                    return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
                };
                match io::Read::read(&mut tls.reader(), buf.initialize_unfilled()) {
                    Ok(n) => {
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    // A peer that hung up without close_notify: the end.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Poll::Ready(Err(e)),
                    Err(_) => {}
                }
                match tls.read_tls(&mut Socket(&self.tcp)) {
                    Ok(0) => return Poll::Ready(Ok(())),
                    Ok(_) => {
                        let processed = tls.process_new_packets();
                        // Alerts, session tickets, key updates: out now if they can.
                        let written = write_tls(&self.tcp, tls);
                        if let Err(e) = processed {
                            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                        }
                        if let Err(e) = written {
                            out.broken = true;
                            return Poll::Ready(Err(e));
                        }
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            ready!(self.tcp.poll_read_ready(cx))?;
        }
    }
}

/// The wire as the stream tungstenite reads and writes.
#[derive(Debug)]
pub(crate) struct WireStream(pub(crate) Arc<Wire>);

impl AsyncRead for WireStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(self.as_ref().poll_read_raw(cx, buf))?;
        Poll::Ready(self.0.seen(buf, before))
    }
}

impl WireStream {
    /// The next bytes: given back ones first, then the socket's (through
    /// TLS on a TLS connection).
    fn poll_read_raw(
        self: Pin<&Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        {
            let mut out = self.0.out();
            if !out.unread.is_empty() {
                let n = out.unread.len().min(buf.remaining());
                buf.put_slice(&out.unread[..n]);
                out.unread.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if out.tls.is_some() {
                drop(out);
                return self.0.poll_read_tls(cx, buf);
            }
        }
        loop {
            ready!(self.0.tcp.poll_read_ready(cx))?;
            match self.0.tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for WireStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut out = self.0.out();
        Poll::Ready(self.0.put(&mut out, buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A TLS session says so first (close_notify), once; then what waits
        // goes out and the write half closes (FIN), so that a peer whose
        // request was not read to its end still gets the answer before the
        // socket closes when the last holder of the wire lets it go.
        self.0.close_notify();
        ready!(self.0.poll_drain(cx))?;
        match socket2::SockRef::from(&self.0.tcp).shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A wire on one end of a loopback connection, and the other end.
    async fn pair() -> (Arc<Wire>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (
            Wire::new(
                accepted.expect("accept").0,
                prometheus::IntCounter::new("b", "b").expect("valid"),
            ),
            client.expect("connect"),
        )
    }

    /// A frame that says which event it is: `seq` repeated to `len` bytes.
    fn frame(seq: u64, len: usize) -> Vec<u8> {
        vec![seq as u8; len]
    }

    #[tokio::test]
    async fn events_wait_until_live_behind_a_reply_and_behind_queued_ones() {
        let (wire, _peer) = pair().await;
        assert_eq!(
            wire.offer_events(1, 1, 1, &frame(1, 4)),
            Offer::Queue,
            "not live"
        );
        wire.go_live(0);
        assert_eq!(
            wire.offer_events(2, 2, 1, &frame(2, 4)),
            Offer::Queue,
            "behind the queued one"
        );
        // The task writes the queue; event 1 is in the snapshot, 2 is not.
        wire.go_live(1);
        let written = wire
            .write_queued([(Some(1), &frame(1, 4)[..]), (Some(2), &frame(2, 4)[..])])
            .expect("write");
        assert_eq!(written, 1, "event 1 was in the snapshot");
        wire.busy(true);
        assert_eq!(
            wire.offer_events(3, 3, 1, &frame(3, 4)),
            Offer::Queue,
            "a reply first"
        );
        wire.busy(false);
        wire.write_queued([(Some(3), &frame(3, 4)[..])])
            .expect("write");
        assert_eq!(
            wire.offer_events(4, 5, 2, &frame(4, 8)),
            Offer::Done,
            "straight out"
        );
        assert_eq!(
            wire.offer_events(4, 5, 2, &frame(4, 8)),
            Offer::Done,
            "already had"
        );
        assert_eq!(wire.offer_direct(b"standing"), Offer::Done);
    }

    #[tokio::test]
    async fn a_full_socket_keeps_frames_whole_and_in_order() {
        let (wire, mut peer) = pair().await;
        wire.go_live(0);
        // Offer until the socket stops taking them at once (bounded: the
        // kernel's buffers hold a few MiB at most).
        let len = 16 * 1024;
        let mut seq = 0u64;
        while !wire.has_pending() && seq < 2_000 {
            seq += 1;
            assert_eq!(
                wire.offer_events(seq, seq, 1, &frame(seq, len)),
                Offer::Done
            );
        }
        assert!(wire.has_pending(), "the socket never filled");
        // The reader makes room; what is offered now must still wait behind
        // the pending bytes, not jump into the socket ahead of them.
        let mut head = vec![0u8; 4 * len];
        peer.read_exact(&mut head).await.expect("read");
        for _ in 0..4 {
            seq += 1;
            assert_eq!(
                wire.offer_events(seq, seq, 1, &frame(seq, len)),
                Offer::Done
            );
        }
        let expected = seq as usize * len - head.len();
        let reader = async move {
            let mut got = vec![0u8; expected];
            peer.read_exact(&mut got)
                .await
                .map(|_| [head, got].concat())
        };
        let (drained, got) = tokio::join!(std::future::poll_fn(|cx| wire.poll_drain(cx)), reader);
        drained.expect("drain");
        let got = got.expect("read");
        for (i, chunk) in got.chunks(len).enumerate() {
            assert!(
                chunk.iter().all(|b| *b == (i as u64 + 1) as u8),
                "frame {} came whole and in its place",
                i + 1
            );
        }
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_reported_slow() {
        let (wire, _peer) = pair().await;
        wire.go_live(0);
        let mut slow = false;
        for seq in 1..=2_000u64 {
            if wire.offer_events(seq, seq, 1, &frame(seq, 16 * 1024)) == Offer::Slow {
                slow = true;
                break;
            }
        }
        assert!(slow, "32 MiB offered to a client that reads nothing");
    }
}
