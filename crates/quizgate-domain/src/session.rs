//! Rules about a client's session rather than the quiz's play: how far back a
//! reconnecting client can be replayed, and how long an idle quiz is kept.

use crate::{Millis, Phase};

/// What a reconnecting client (player or host) gets after its `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Every event with `seq > after` up to the snapshot's `seq` follows, in
    /// order (none when the client is up to date): `resumed: true`.
    Events { after: u64 },
    /// The snapshot replaces the client's state: `resumed: false`. Either the log
    /// no longer reaches back to the client's gap, or the client claims events
    /// the quiz never had (a `last_seq` beyond the quiz's `seq`).
    Snapshot,
}

/// Decides a resume. `head` is the quiz's last `seq`; `oldest_logged` is the
/// oldest event still in the quiz's log (`None` if the log is empty).
pub fn replay(last_seq: u64, head: u64, oldest_logged: Option<u64>) -> Replay {
    if last_seq > head {
        return Replay::Snapshot;
    }
    if last_seq == head {
        return Replay::Events { after: last_seq };
    }
    match oldest_logged {
        Some(oldest) if last_seq + 1 >= oldest => Replay::Events { after: last_seq },
        _ => Replay::Snapshot,
    }
}

/// How long a quiz is kept after its last activity: `idle` while it can still
/// change, `ended` once it has ended.
///
/// Activity is any client call that names the quiz (create, join, resume, host,
/// command, answer), whatever its outcome, and any periodic check that changed
/// the quiz (a deadline that closed a question, a leaderboard that was
/// published). A periodic check that changed nothing is not activity.
pub fn retention(phase: Phase, idle: Millis, ended: Millis) -> Millis {
    if phase == Phase::Ended { ended } else { idle }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_table() {
        use Replay::*;
        // (last_seq, head, oldest logged, want)
        let cases = [
            (5, 5, Some(1), Events { after: 5 }),
            (0, 0, None, Events { after: 0 }),
            (3, 5, Some(1), Events { after: 3 }),
            (3, 5, Some(4), Events { after: 3 }),
            (2, 5, Some(4), Snapshot),
            (3, 5, None, Snapshot),
            (6, 5, Some(1), Snapshot),
            (u64::MAX, 5, Some(1), Snapshot),
        ];
        for (last, head, oldest, want) in cases {
            assert_eq!(replay(last, head, oldest), want, "{last} {head} {oldest:?}");
        }
    }

    #[test]
    fn ended_quizzes_are_kept_for_less() {
        assert_eq!(retention(Phase::Lobby, 100, 10), 100);
        assert_eq!(retention(Phase::Question, 100, 10), 100);
        assert_eq!(retention(Phase::Ended, 100, 10), 10);
    }
}
