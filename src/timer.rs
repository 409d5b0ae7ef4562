//! One timer per client connection, for the deadlines its HTTP/1 requests
//! wait on one after the other: the next request head
//! (`header_read_timeout`) and the upstream's response head (a route's
//! `timeout`).
//!
//! A tokio `Sleep` made for one deadline and dropped after it registers in
//! the worker's timer wheel and leaves it again: two locked wheel
//! operations, a clock read and an allocation per deadline, two deadlines
//! per request. The connection keeps one `Sleep` instead, set to the
//! earliest deadline it was asked for; a later deadline (each request's
//! are later than the last one's) is not written to it until the set one
//! passes, when a wait still running sets it again. A request whose
//! deadlines move forward then costs no timer work at all, and the
//! connection one reset per `header_read_timeout` or so (README
//! "Performance").
//!
//! An HTTP/1 connection waits on one deadline at a time (hyper reads the
//! next head only once the service has answered), from one task, so the
//! `Sleep` keeps one waker. HTTP/2 streams run as tasks of their own and
//! give each wait its own `Sleep` ([`Timeout::own`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

/// A client connection's timer; clones share it. Must be made inside the
/// runtime that polls it.
#[derive(Debug, Clone)]
pub(crate) struct ConnTimer(Arc<Mutex<Pin<Box<Sleep>>>>);

impl ConnTimer {
    pub(crate) fn new() -> Self {
        // Not registered until first polled.
        ConnTimer(Arc::new(Mutex::new(Box::pin(tokio::time::sleep(
            Duration::ZERO,
        )))))
    }

    /// Ready once `at` has passed; the deadline of the one wait in
    /// progress.
    fn poll_until(&self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let mut sleep = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // A later deadline than the one set waits for that one to pass
        // (each request's are later than the last one's).
        if at < sleep.deadline() {
            sleep.as_mut().reset(at);
        }
        loop {
            ready!(sleep.as_mut().poll(cx));
            if sleep.deadline() >= at {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(at);
        }
    }
}

/// hyper's HTTP/1 server times each request head with this.
impl hyper::rt::Timer for ConnTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Until {
            timer: self.clone(),
            at: deadline.into(),
        })
    }

    /// tokio's clock, which the deadlines are kept on (and which a test
    /// may pause).
    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// A wait on the connection's timer, as hyper's `Sleep`.
struct Until {
    timer: ConnTimer,
    at: Instant,
}

impl Future for Until {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.timer.poll_until(self.at, cx)
    }
}

impl hyper::rt::Sleep for Until {}

/// What a [`Timeout`] waits on.
#[derive(Debug)]
enum Clock<'a> {
    /// The connection's timer (HTTP/1).
    Conn(&'a ConnTimer),
    /// A `Sleep` of its own, made on the first wait (HTTP/2).
    Own(Option<Pin<Box<Sleep>>>),
}

pin_project! {
    /// `fut`, or `Err(Elapsed)` once its deadline passed first.
    #[derive(Debug)]
    pub(crate) struct Timeout<'a, F> {
        #[pin]
        fut: F,
        at: Instant,
        clock: Clock<'a>,
    }
}

/// A [`Timeout`]'s deadline passed before its future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

impl<'a, F: Future> Timeout<'a, F> {
    /// Waits for `fut` at most `limit`, on the connection's timer.
    pub(crate) fn on(timer: &'a ConnTimer, limit: Duration, fut: F) -> Self {
        Timeout {
            fut,
            at: Instant::now() + limit,
            clock: Clock::Conn(timer),
        }
    }

    /// Waits for `fut` at most `limit`, on a timer of its own.
    pub(crate) fn own(limit: Duration, fut: F) -> Self {
        Timeout {
            fut,
            at: Instant::now() + limit,
            clock: Clock::Own(None),
        }
    }
}

impl<F: Future> Future for Timeout<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        match this.clock {
            Clock::Conn(timer) => ready!(timer.poll_until(*this.at, cx)),
            Clock::Own(sleep) => {
                let at = *this.at;
                ready!(
                    sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)))
                        .as_mut()
                        .poll(cx)
                );
            }
        }
        Poll::Ready(Err(Elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// How long `fut` took.
    async fn took<T>(fut: impl Future<Output = T>) -> (T, Duration) {
        let begun = Instant::now();
        let out = fut.await;
        (out, Instant::now() - begun)
    }

    /// Not before `limit`, and not near a deadline 30 s away (a busy
    /// machine may be late by much more than a timer tick).
    fn on_time(took: Duration, limit: Duration) -> bool {
        took >= limit && took < limit + Duration::from_secs(5)
    }

    fn pending() -> std::future::Pending<()> {
        std::future::pending()
    }

    #[tokio::test]
    async fn waits_one_after_another_each_end_at_their_deadline() {
        let timer = ConnTimer::new();
        for limit in [50 * MS, 200 * MS, 10 * MS, 100 * MS] {
            let (r, t) = took(Timeout::on(&timer, limit, pending())).await;
            assert_eq!(r, Err(Elapsed));
            assert!(on_time(t, limit), "{limit:?} wait took {t:?}");
        }
    }

    #[tokio::test]
    async fn an_abandoned_later_deadline_does_not_delay_an_earlier_one() {
        let timer = ConnTimer::new();
        tokio::select! {
            _ = Timeout::on(&timer, Duration::from_secs(30), pending()) => {
                panic!("30 s deadline passed within 100 ms")
            }
            () = tokio::time::sleep(100 * MS) => {}
        }
        let (r, t) = took(Timeout::on(&timer, 200 * MS, pending())).await;
        assert_eq!(r, Err(Elapsed));
        assert!(on_time(t, 200 * MS), "took {t:?}");
    }

    #[tokio::test]
    async fn an_earlier_deadline_left_set_does_not_end_a_later_wait() {
        let timer = ConnTimer::new();
        let fut = async {
            tokio::time::sleep(20 * MS).await;
            1
        };
        assert_eq!(Timeout::on(&timer, 150 * MS, fut).await, Ok(1));
        // The timer is still set for the first wait's deadline, 130 ms on.
        let (r, t) = took(Timeout::on(&timer, 400 * MS, pending())).await;
        assert_eq!(r, Err(Elapsed));
        assert!(on_time(t, 400 * MS), "took {t:?}");
    }

    #[tokio::test]
    async fn a_future_that_finishes_first_wins() {
        let timer = ConnTimer::new();
        let fut = async {
            tokio::time::sleep(50 * MS).await;
            7
        };
        assert_eq!(
            Timeout::on(&timer, Duration::from_secs(30), fut).await,
            Ok(7)
        );
        // The next wait is not cut short by the one before.
        let (r, t) = took(Timeout::on(&timer, 300 * MS, pending())).await;
        assert_eq!(r, Err(Elapsed));
        assert!(on_time(t, 300 * MS), "took {t:?}");
        let (r, t) = took(Timeout::own(100 * MS, pending())).await;
        assert_eq!(r, Err(Elapsed));
        assert!(on_time(t, 100 * MS), "took {t:?}");
    }

    #[tokio::test]
    async fn hyper_sleeps_share_the_timer() {
        use hyper::rt::Timer;
        let timer = ConnTimer::new();
        let ((), t) = took(timer.sleep(100 * MS)).await;
        assert!(on_time(t, 100 * MS), "took {t:?}");
        // A head deadline dropped before it came (hyper drops it once the
        // head is read) neither ends nor delays the next wait.
        tokio::select! {
            () = timer.sleep(Duration::from_secs(30)) => panic!("30 s sleep ended within 50 ms"),
            () = tokio::time::sleep(50 * MS) => {}
        }
        let ((), t) = took(timer.sleep(150 * MS)).await;
        assert!(on_time(t, 150 * MS), "took {t:?}");
    }
}
