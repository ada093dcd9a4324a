//! Adaptive busy polling (`busy-poll-us`).
//!
//! A worker that runs out of work sleeps in `epoll_wait`, and the next client write has to
//! wake it: a scheduler wake-up the client pays for in system time. Near saturation that
//! happens after almost every event, and with the client on the same machine (a sidecar,
//! a benchmark) it is what limits throughput: measured with redis-benchmark on two cores,
//! flowkv's worker slept two to three times as often as Redis's event loop.
//!
//! So a worker that was busy for most of the last window keeps polling, without blocking,
//! for `busy-poll-us` after its last event before it sleeps. Below that load it sleeps at
//! once, as before, and costs no CPU while idle; busy polling only fills the gaps of a
//! worker that is nearly saturated anyway.

use std::time::{Duration, Instant};

/// The span over which a worker's load is measured.
const WINDOW: Duration = Duration::from_millis(10);
/// The share of a window a worker must have spent handling events to busy-poll in the
/// next one.
const BUSY_SHARE: f64 = 0.6;

/// One worker's load estimate and busy-poll deadline.
pub struct Spin {
    window_start: Instant,
    /// Time spent handling events in the current window.
    busy: Duration,
    /// The last window was busy enough to busy-poll in this one.
    hot: bool,
    /// Poll without blocking until then (set after events, while `hot`).
    until: Option<Instant>,
}

impl Spin {
    pub fn new(now: Instant) -> Spin {
        Spin {
            window_start: now,
            busy: Duration::ZERO,
            hot: false,
            until: None,
        }
    }

    /// The poll timeout to use instead of `wait`: zero while busy-polling.
    pub fn wait(&self, now: Instant, wait: Duration) -> Duration {
        match self.until {
            Some(until) if now < until => Duration::ZERO,
            _ => wait,
        }
    }

    /// Records one loop pass: the poll returned at `polled` with events or not, and their
    /// handling ended at `done`. `spin_us` is `busy-poll-us`.
    pub fn record(&mut self, polled: Instant, done: Instant, had_events: bool, spin_us: u64) {
        if had_events {
            self.busy += done.saturating_duration_since(polled);
            self.until = (self.hot && spin_us > 0).then(|| done + Duration::from_micros(spin_us));
        }
        let elapsed = done.saturating_duration_since(self.window_start);
        if elapsed >= WINDOW {
            self.hot = self.busy.as_secs_f64() >= BUSY_SHARE * elapsed.as_secs_f64();
            self.busy = Duration::ZERO;
            self.window_start = done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_without_blocking_only_after_a_busy_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Spin::new(t0);
        // A window 30% busy: no busy polling in the next.
        s.record(t0, t0 + ms(3), true, 50);
        s.record(t0 + ms(10), t0 + ms(10), false, 50);
        s.record(t0 + ms(11), t0 + ms(12), true, 50);
        assert_eq!(s.wait(t0 + ms(12), ms(100)), ms(100));
        // A window 90% busy (10..20 ms): events in the next one are followed by polling.
        s.record(t0 + ms(12), t0 + ms(20), true, 50);
        s.record(t0 + ms(20), t0 + ms(21), true, 50);
        assert_eq!(s.wait(t0 + ms(21), ms(100)), Duration::ZERO);
        // ... for busy-poll-us after the last event only, and never with it at 0.
        assert_eq!(
            s.wait(t0 + ms(21) + Duration::from_micros(60), ms(100)),
            ms(100)
        );
        s.record(t0 + ms(22), t0 + ms(23), true, 0);
        assert_eq!(s.wait(t0 + ms(23), ms(100)), ms(100));
    }
}
