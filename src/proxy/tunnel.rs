//! An upgraded connection (WebSocket, or a protocol a route lists in
//! `upgrades`): bytes copied both ways until either side closes, or until
//! `[server] tunnel_idle_timeout` (default 5 min) passes without a byte
//! either way, so an abandoned tunnel does not hold two sockets forever.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How a tunnel ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// A side closed; bytes copied client-to-upstream and back.
    Closed {
        /// Bytes from the client to the upstream.
        up: u64,
        /// Bytes from the upstream to the client.
        down: u64,
    },
    /// Nothing passed for the idle timeout; both sides were dropped.
    Idle,
}

/// Copies between `client` and `upstream` until one closes or `idle`
/// passes without a byte in either direction.
pub(crate) async fn copy_until_idle<C, U>(
    client: C,
    upstream: &mut U,
    idle: Duration,
) -> io::Result<Ended>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let start = Instant::now();
    // Milliseconds from `start` to the last byte either way. Every byte
    // crosses the client side (read: up, written: down), so watching that
    // side sees both directions.
    let last = AtomicU64::new(0);
    let mut client = Watched {
        io: client,
        start,
        last: &last,
    };
    let copy = tokio::io::copy_bidirectional(&mut client, upstream);
    tokio::pin!(copy);
    loop {
        let deadline = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
        tokio::select! {
            r = &mut copy => return r.map(|(up, down)| Ended::Closed { up, down }),
            () = tokio::time::sleep_until(deadline) => {
                let quiet_since = start + Duration::from_millis(last.load(Ordering::Relaxed));
                if quiet_since + idle <= Instant::now() {
                    return Ok(Ended::Idle);
                }
            }
        }
    }
}

/// The client side of a tunnel, noting when bytes last passed.
struct Watched<'a, T> {
    io: T,
    start: Instant,
    last: &'a AtomicU64,
}

impl<T> Watched<'_, T> {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<'_, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn traffic_keeps_a_tunnel_open_and_silence_closes_it() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (mut upstream, mut upstream_peer) = tokio::io::duplex(64);
        let idle = Duration::from_millis(300);
        let tunnel =
            tokio::spawn(async move { copy_until_idle(client, &mut upstream, idle).await });
        // Traffic every 200 ms, each way in turn, for longer than `idle`.
        for i in 0..4 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut b = [0u8; 1];
            if i % 2 == 0 {
                client_peer.write_all(b"x").await.unwrap();
                upstream_peer.read_exact(&mut b).await.unwrap();
            } else {
                upstream_peer.write_all(b"y").await.unwrap();
                client_peer.read_exact(&mut b).await.unwrap();
            }
            assert!(!tunnel.is_finished(), "closed while in use");
        }
        let quiet = Instant::now();
        let ended = tokio::time::timeout(Duration::from_secs(5), tunnel)
            .await
            .expect("closed within 5 s")
            .unwrap()
            .unwrap();
        assert!(matches!(ended, Ended::Idle), "{ended:?}");
        assert!(
            quiet.elapsed() >= Duration::from_millis(250),
            "{:?}",
            quiet.elapsed()
        );
    }

    #[tokio::test]
    async fn a_side_closing_ends_the_tunnel_with_its_counts() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (mut upstream, mut upstream_peer) = tokio::io::duplex(64);
        let tunnel = tokio::spawn(async move {
            copy_until_idle(client, &mut upstream, Duration::from_secs(60)).await
        });
        client_peer.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        upstream_peer.read_exact(&mut b).await.unwrap();
        upstream_peer.write_all(b"po").await.unwrap();
        client_peer.read_exact(&mut b[..2]).await.unwrap();
        drop(client_peer);
        drop(upstream_peer);
        let ended = tokio::time::timeout(Duration::from_secs(5), tunnel)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(
            matches!(ended, Ended::Closed { up: 4, down: 2 }),
            "{ended:?}"
        );
    }
}
