use crate::Millis;

/// Points for one answer, decided by the server's clock.
///
/// A wrong answer scores 0. A right one scores between all of `points` (answered
/// at once) and half of it (answered at the deadline), falling linearly:
///
/// ```text
/// score = round(points × (1 − elapsed / (2 × time_limit)))
/// ```
///
/// `elapsed` is clamped to `0..=time_limit`; rounding is half up.
pub fn score(points: u32, correct: bool, elapsed: Millis, time_limit: Millis) -> u32 {
    if !correct || points == 0 {
        return 0;
    }
    let limit = time_limit.max(1);
    let elapsed = elapsed.min(limit);
    let num = u64::from(points) * (2 * limit - elapsed);
    // num / (2 × limit), rounded half up
    ((2 * num + 2 * limit) / (4 * limit)) as u32
}

#[cfg(test)]
mod tests {
    use super::score;

    #[test]
    fn table() {
        let cases = [
            // points, correct, elapsed, limit, want
            (1000, true, 0, 20_000, 1000),
            (1000, true, 20_000, 20_000, 500),
            (1000, true, 10_000, 20_000, 750),
            (1000, true, 99_999, 20_000, 500), // clamped to the limit
            (1000, false, 0, 20_000, 0),
            (0, true, 0, 20_000, 0),
            (1000, true, 1, 20_000, 1000), // 999.975 rounds up
            (1000, true, 30, 20_000, 999), // 999.25 rounds down
            (1, true, 20_000, 20_000, 1),  // 0.5 rounds up
            (10_000, true, 5_000, 10_000, 7500),
        ];
        for (points, correct, elapsed, limit, want) in cases {
            assert_eq!(
                score(points, correct, elapsed, limit),
                want,
                "{points} {correct} {elapsed} {limit}"
            );
        }
    }

    #[test]
    fn faster_never_scores_less() {
        let mut last = u32::MAX;
        for elapsed in (0..=20_000).step_by(7) {
            let s = score(1000, true, elapsed, 20_000);
            assert!(s <= last);
            last = s;
        }
    }
}
