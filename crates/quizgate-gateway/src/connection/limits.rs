//! What one connection may send, and when its close is due in a drain.

use std::time::Duration;

use crate::guard::TokenBucket;
use crate::registry::ConnId;

/// Bad frames a connection may send, in its lifetime, before it is closed with 1008.
const MAX_BAD_FRAMES: u32 = 20;
/// Frames over the rate a connection may send, in its lifetime, before it is
/// closed with 1008.
const MAX_RATE_LIMITED: u32 = 50;

/// What a frame over a limit costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// Refused with an error; the connection stays.
    Refused,
    /// One too many: the connection is closed.
    Closed,
}

/// The frame rate (a token bucket) and the lifetime counts of bad frames and
/// of frames over the rate.
#[derive(Debug)]
pub(crate) struct Limits {
    bucket: TokenBucket,
    bad_frames: u32,
    rate_limited: u32,
}

impl Limits {
    pub(crate) fn new(frames_per_second: u32) -> Self {
        Self {
            bucket: TokenBucket::new(
                f64::from(frames_per_second),
                2.0 * f64::from(frames_per_second),
            ),
            bad_frames: 0,
            rate_limited: 0,
        }
    }

    /// Takes one frame's worth of rate; `Some` if the frame is over it.
    pub(crate) fn over_rate(&mut self) -> Option<Over> {
        if self.bucket.take(1.0) {
            return None;
        }
        self.rate_limited += 1;
        Some(if self.rate_limited > MAX_RATE_LIMITED {
            Over::Closed
        } else {
            Over::Refused
        })
    }

    /// Counts a frame that did not decode.
    pub(super) fn bad_frame(&mut self) -> Over {
        self.bad_frames += 1;
        if self.bad_frames > MAX_BAD_FRAMES {
            Over::Closed
        } else {
            Over::Refused
        }
    }
}

/// This connection's place in the drain window: spread evenly by id.
pub(super) fn spread(id: ConnId, window: Duration) -> Duration {
    let ms = window.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    // Fibonacci hashing spreads consecutive ids over the whole window.
    Duration::from_millis(id.wrapping_mul(0x9E37_79B9_7F4A_7C15) % ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_close_after_their_limits() {
        let mut limits = Limits::new(1);
        for _ in 0..MAX_BAD_FRAMES {
            assert_eq!(limits.bad_frame(), Over::Refused);
        }
        assert_eq!(limits.bad_frame(), Over::Closed);
    }

    #[test]
    fn drain_spread_stays_in_the_window() {
        let window = Duration::from_secs(5);
        let spreads: Vec<Duration> = (1..=1000).map(|id| spread(id, window)).collect();
        assert!(spreads.iter().all(|d| *d < window));
        let early = spreads
            .iter()
            .filter(|d| **d < Duration::from_millis(2500))
            .count();
        assert!(
            (400..=600).contains(&early),
            "{early} of 1000 in the first half"
        );
        assert_eq!(spread(7, Duration::ZERO), Duration::ZERO);
    }
}
