use serde::{Deserialize, Serialize};

use crate::{Event, Millis, PlayerId};

/// How many players a leaderboard shows.
pub const LEADERBOARD_SIZE: usize = 10;

/// A quiz's coalesced leaderboards never cost more than this many deliveries
/// per second, cluster-wide: in a big quiz they come less often.
pub const LEADERBOARD_DELIVERY_BUDGET: u64 = 20_000;

/// The least time between two coalesced leaderboards of a quiz with `players`
/// players: the configured `base`, stretched so that `players` deliveries per
/// leaderboard stay within [`LEADERBOARD_DELIVERY_BUDGET`] per second
/// (250 ms up to 5,000 players, 1 s at 20,000, 5 s at 100,000).
pub fn leaderboard_interval(base: Millis, players: u32) -> Millis {
    base.max(u64::from(players) * 1000 / LEADERBOARD_DELIVERY_BUDGET)
}

/// One line of a leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    pub player_id: PlayerId,
    pub nickname: String,
    pub score: u64,
    /// 1 + the number of players with a strictly higher score: equal scores share a rank.
    pub rank: u32,
}

/// The rank of `score` among `scores_desc` (all scores of a quiz, highest first):
/// 1 + the number of strictly higher scores.
pub fn rank_of(score: u64, scores_desc: &[u64]) -> u32 {
    scores_desc.partition_point(|s| *s > score) as u32 + 1
}

/// Each player's score and rank from every score of a quiz, highest first
/// (as [`crate::Quiz::scores`] gives them): `(player, score, rank)`, equal
/// scores sharing a rank as in [`rank_of`].
pub fn ranked(scores_desc: &[(PlayerId, u64)]) -> impl Iterator<Item = (PlayerId, u64, u32)> + '_ {
    let mut rank = 0;
    scores_desc
        .iter()
        .enumerate()
        .map(move |(i, (player, score))| {
            if i == 0 || scores_desc[i - 1].1 != *score {
                rank = i as u32 + 1;
            }
            (*player, *score, rank)
        })
}

/// When players are sent their own `standing`: once per question, right after
/// the leaderboard that follows its reveal, and once after the quiz ended.
///
/// Feed it every event of a quiz in sequence order; it says after which one
/// standings are due. Scores cannot change between such an event and the next
/// `question` event (answers to a closed question are late), so standings
/// computed from scores read while the quiz's `seq` is still the due event's
/// `seq` are exactly the standings at that event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StandingsGate {
    after_reveal: bool,
}

/// Standings owed after the event with this `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandingsDue {
    pub seq: u64,
    /// After the quiz ended: every player gets its final standing, changed or not.
    pub is_final: bool,
}

impl StandingsGate {
    pub fn observe(&mut self, seq: u64, event: &Event) -> Option<StandingsDue> {
        let due = match event {
            Event::Leaderboard { .. } if self.after_reveal => Some(StandingsDue {
                seq,
                is_final: false,
            }),
            Event::QuizEnded { .. } => Some(StandingsDue {
                seq,
                is_final: true,
            }),
            _ => None,
        };
        self.after_reveal = matches!(event, Event::QuestionClosed { .. });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CloseReason;

    #[test]
    fn ranked_shares_ranks() {
        let got: Vec<_> = ranked(&[(3, 900), (1, 900), (2, 500), (4, 0)]).collect();
        assert_eq!(got, [(3, 900, 1), (1, 900, 1), (2, 500, 3), (4, 0, 4)]);
    }

    #[test]
    fn standings_follow_the_reveal_leaderboard_and_the_end() {
        let lb = Event::Leaderboard {
            top: vec![],
            players: 1,
        };
        let closed = Event::QuestionClosed {
            index: 0,
            correct: 0,
            distribution: vec![],
            answered: 0,
            reason: CloseReason::Deadline,
        };
        let started = Event::QuestionStarted {
            index: 0,
            started_ms: 0,
            deadline_ms: 1,
        };
        let ended = Event::QuizEnded {
            top: vec![],
            players: 1,
        };
        let mut gate = StandingsGate::default();
        let seen: Vec<_> = [
            &lb, &started, &lb, &closed, &lb, &lb, &started, &closed, &ended,
        ]
        .iter()
        .enumerate()
        .map(|(i, e)| gate.observe(i as u64 + 1, e))
        .collect();
        let due = |seq, is_final| Some(StandingsDue { seq, is_final });
        assert_eq!(
            seen,
            [
                None,
                None,
                None,
                None,
                due(5, false),
                None,
                None,
                None,
                due(9, true)
            ]
        );
    }

    #[test]
    fn big_quizzes_get_leaderboards_less_often() {
        use super::leaderboard_interval;
        let cases = [
            (0, 250),
            (5_000, 250),
            (6_000, 300),
            (20_000, 1_000),
            (100_000, 5_000),
        ];
        for (players, want) in cases {
            assert_eq!(leaderboard_interval(250, players), want, "{players}");
        }
    }

    #[test]
    fn ranks_share_ties() {
        let scores = [900, 900, 500, 0, 0];
        let cases = [(900, 1), (500, 3), (0, 4), (1000, 1), (100, 4)];
        for (score, want) in cases {
            assert_eq!(rank_of(score, &scores), want, "{score}");
        }
    }
}
