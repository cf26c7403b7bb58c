use serde::{Deserialize, Serialize};

use crate::{Millis, PlayerId};

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

#[cfg(test)]
mod tests {
    use super::rank_of;

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
