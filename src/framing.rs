//! Request framing watch for HTTP/1.1 connections.
//!
//! A request with both `Content-Length` and `Transfer-Encoding` is the
//! classic request-smuggling vector (RFC 9112 §6.3). hyper's parser frames
//! such a request by its chunked encoding, closes the connection after the
//! response, and drops the `Content-Length` before the request reaches us,
//! so the service alone cannot refuse it with the 400 CONTRACT.md asks
//! for. `Watched` wraps the client's socket and follows the request framing
//! in the bytes hyper reads (heads parsed with `httparse`, the parser hyper
//! itself uses; bodies skipped by length or by chunk), and records which
//! request on the connection carried both headers. `Framing::next_request`
//! tells the service, request by request, whether this is the one.
//!
//! The watch is conservative: anything it does not follow exactly (an
//! HTTP/2 preface, a protocol upgrade, a head hyper would refuse, a head or
//! line over its caps) turns it off for the rest of the connection, so it
//! can miss a case (which hyper still makes safe by closing the connection)
//! but never flags a request that did not carry both headers.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest request head followed; larger ones turn the watch off.
const MAX_HEAD: usize = 64 * 1024;
/// Largest chunk-size line or trailer section followed.
const MAX_LINE: usize = 16 * 1024;
/// hyper's default limit on the number of request headers.
const MAX_HEADERS: usize = 100;

/// What the watch learned, shared between the socket and the service.
#[derive(Debug, Default)]
pub(crate) struct Framing {
    /// 1-based index of the request whose head had both framings; 0: none.
    ambiguous: AtomicU32,
    /// Requests handed to the service so far.
    served: AtomicU32,
}

impl Framing {
    /// Called once per request, in the order hyper serves them (an HTTP/1
    /// connection serves one request at a time): true when this request's
    /// head carried both `Content-Length` and `Transfer-Encoding`.
    pub(crate) fn next_request(&self) -> bool {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        self.ambiguous.load(Ordering::Acquire) == n
    }
}

/// Where the watch is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a request head.
    Head,
    /// Skipping a `Content-Length` body: bytes left.
    Body(u64),
    /// Collecting a chunk-size line.
    ChunkSize,
    /// Skipping chunk data: bytes left.
    ChunkData(u64),
    /// The CR (false) or LF (true) that ends a chunk's data.
    ChunkEnd(bool),
    /// Collecting the trailer section after the last chunk.
    Trailers,
    /// Not following this connection any more.
    Off,
}

/// Follows request framing through the bytes read.
#[derive(Debug)]
struct Scanner {
    state: State,
    /// The partial head, chunk-size line or trailer section.
    buf: Vec<u8>,
    /// Request heads seen so far.
    heads: u32,
    shared: Arc<Framing>,
}

impl Scanner {
    fn new(shared: Arc<Framing>) -> Self {
        Scanner {
            state: State::Head,
            buf: Vec::new(),
            heads: 0,
            shared,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self.state {
                State::Off => return,
                State::Body(left) | State::ChunkData(left) => {
                    let n = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    data = &data[n..];
                    let rest = left - n as u64;
                    self.state = match (self.state, rest) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), _) => State::Body(rest),
                        (_, 0) => State::ChunkEnd(false),
                        _ => State::ChunkData(rest),
                    };
                }
                State::ChunkEnd(lf) => {
                    let want = if lf { b'\n' } else { b'\r' };
                    if data[0] != want {
                        // hyper refuses this body; it closes the connection.
                        return self.off();
                    }
                    data = &data[1..];
                    self.state = if lf {
                        State::ChunkSize
                    } else {
                        State::ChunkEnd(true)
                    };
                }
                State::Head if self.buf.is_empty() => {
                    // The usual case: a whole head in one read, parsed
                    // where it lies, without copying it.
                    match self.whole_head(data) {
                        Some(len) => data = &data[len..],
                        None => self.collect_line(&mut data),
                    }
                }
                State::Head | State::ChunkSize | State::Trailers => self.collect_line(&mut data),
            }
        }
    }

    /// Parses a head at the start of `data` if it is all there, and moves
    /// on past it; its length, or None when it is not complete.
    fn whole_head(&mut self, data: &[u8]) -> Option<usize> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(data) {
            Ok(httparse::Status::Complete(len)) => {
                self.framed(&req);
                Some(len)
            }
            Ok(httparse::Status::Partial) => None,
            // An HTTP/2 preface, too many headers, or a head hyper refuses.
            Err(_) => {
                self.off();
                Some(data.len())
            }
        }
    }

    /// Collects `data` up to and including its next LF into `buf`, and
    /// looks at what the line ends (a head, a chunk-size line, trailers).
    fn collect_line(&mut self, data: &mut &[u8]) {
        let (take, line_end) = match data.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (data.len(), false),
        };
        self.buf.extend_from_slice(&data[..take]);
        *data = &data[take..];
        let cap = if self.state == State::Head {
            MAX_HEAD
        } else {
            MAX_LINE
        };
        if self.buf.len() > cap {
            return self.off();
        }
        if line_end {
            self.line_ended();
        }
    }

    fn off(&mut self) {
        self.state = State::Off;
        self.buf = Vec::new();
    }

    /// A line ended in `buf`: see whether the head, size line or trailer
    /// section is complete.
    fn line_ended(&mut self) {
        match self.state {
            State::Head => self.head_line(),
            State::ChunkSize => match httparse::parse_chunk_size(&self.buf) {
                Ok(httparse::Status::Complete((_, 0))) => {
                    self.buf.clear();
                    self.state = State::Trailers;
                }
                Ok(httparse::Status::Complete((_, size))) => {
                    self.buf.clear();
                    self.state = State::ChunkData(size);
                }
                _ => self.off(),
            },
            State::Trailers if self.buf == b"\r\n" || self.buf.ends_with(b"\r\n\r\n") => {
                self.buf.clear();
                self.state = State::Head;
            }
            _ => {}
        }
    }

    /// A line of a request head ended: parse the head once it is whole and
    /// decide how its body is framed.
    fn head_line(&mut self) {
        // A head ends with an empty line; parse only then.
        if !(self.buf.ends_with(b"\n\r\n") || self.buf.ends_with(b"\n\n")) {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                debug_assert_eq!(len, buf.len(), "a head ends at a line end");
                self.framed(&req);
                if self.state != State::Off {
                    // Keep the allocation for the next partial head.
                    self.buf = buf;
                    self.buf.clear();
                }
            }
            Ok(httparse::Status::Partial) => self.buf = buf,
            // An HTTP/2 preface, too many headers, or a head hyper refuses.
            Err(_) => self.off(),
        }
    }

    /// A whole request head was parsed: decides how its body is framed,
    /// and records it when it carried both framings.
    fn framed(&mut self, req: &httparse::Request<'_, '_>) {
        let upgrade = req.method == Some("CONNECT");
        let (mut te, mut cl, mut upgrade) = (None::<bool>, None::<u64>, upgrade);
        self.heads += 1;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te = Some(last_coding_is_chunked(h.value));
            } else if h.name.eq_ignore_ascii_case("content-length") {
                let Some(n) = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                else {
                    // hyper answers 400 and closes, unless a
                    // Transfer-Encoding makes it skip the value.
                    cl = Some(u64::MAX);
                    continue;
                };
                if cl.is_some_and(|prev| prev != n) {
                    cl = Some(u64::MAX);
                } else {
                    cl = Some(n);
                }
            } else if h.name.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            }
        }
        self.state = match (te, cl) {
            (Some(_), Some(_)) => {
                self.shared.ambiguous.store(self.heads, Ordering::Release);
                // hyper closes the connection after this request.
                State::Off
            }
            // A protocol switch ends HTTP/1 framing on this connection.
            _ if upgrade => State::Off,
            (Some(true), None) => State::ChunkSize,
            // Another final coding, or HTTP/1.0 with Transfer-Encoding:
            // hyper refuses it.
            (Some(_), None) => State::Off,
            (None, Some(u64::MAX)) => State::Off,
            (None, Some(0)) | (None, None) => State::Head,
            (None, Some(n)) => State::Body(n),
        };
        if self.state == State::Off {
            self.buf = Vec::new();
        }
    }
}

/// True when the last coding in a `Transfer-Encoding` value is `chunked`.
fn last_coding_is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// A client socket whose reads go through the framing watch.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    inner: T,
    scanner: Scanner,
}

impl<T> Watched<T> {
    /// Wraps `inner`; `framing` is what the service consults.
    pub(crate) fn new(inner: T, framing: Arc<Framing>) -> Self {
        Watched {
            inner,
            scanner: Scanner::new(framing),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.scanner.state != State::Off {
            this.scanner.feed(&buf.filled()[before..]);
        }
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` split at every `step`, returning the flagged request
    /// (1-based) and the final state.
    fn scan(bytes: &[u8], step: usize) -> (u32, State, u32) {
        let shared = Arc::new(Framing::default());
        let mut s = Scanner::new(shared.clone());
        for part in bytes.chunks(step) {
            s.feed(part);
        }
        (shared.ambiguous.load(Ordering::Acquire), s.state, s.heads)
    }

    fn all_splits(bytes: &[u8]) -> Vec<(u32, State, u32)> {
        (1..=bytes.len()).map(|step| scan(bytes, step)).collect()
    }

    #[test]
    fn both_framings_flag_the_request_that_carried_them() {
        let stream = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
            POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
            POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        for (flag, state, heads) in all_splits(stream) {
            assert_eq!((flag, state, heads), (4, State::Off, 4));
        }
        // Either order of the two headers.
        let te_first =
            b"POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(scan(te_first, 7).0, 1);
    }

    #[test]
    fn bodies_that_look_like_heads_are_skipped() {
        // A body holding a whole request with both headers is body, not a head.
        let inner = b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut stream = format!(
            "POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            inner.len()
        )
        .into_bytes();
        stream.extend_from_slice(inner);
        stream.extend_from_slice(
            format!(
                "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                inner.len()
            )
            .as_bytes(),
        );
        stream.extend_from_slice(inner);
        stream.extend_from_slice(b"\r\n0\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
        for (flag, state, heads) in all_splits(&stream) {
            assert_eq!((flag, state, heads), (0, State::Head, 3));
        }
    }

    #[test]
    fn anything_not_followed_exactly_turns_the_watch_off() {
        for stream in [
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"CONNECT x:443 HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let (flag, state, _) = scan(stream, stream.len());
            assert_eq!(
                (flag, state),
                (0, State::Off),
                "{}",
                String::from_utf8_lossy(stream)
            );
        }
        let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(scan(huge.as_bytes(), 1000).1, State::Off);
    }

    #[test]
    fn next_request_counts_requests_in_order() {
        let f = Framing::default();
        f.ambiguous.store(2, Ordering::Release);
        assert!(!f.next_request());
        assert!(f.next_request());
        assert!(!f.next_request());
    }

    #[test]
    fn chunked_is_the_last_coding() {
        assert!(last_coding_is_chunked(b"chunked"));
        assert!(last_coding_is_chunked(b"gzip, Chunked "));
        assert!(!last_coding_is_chunked(b"chunked, gzip"));
    }
}
