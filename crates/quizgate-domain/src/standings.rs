use serde::{Deserialize, Serialize};

use crate::PlayerId;

/// How many players a leaderboard shows.
pub const LEADERBOARD_SIZE: usize = 10;

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
    fn ranks_share_ties() {
        let scores = [900, 900, 500, 0, 0];
        let cases = [(900, 1), (500, 3), (0, 4), (1000, 1), (100, 4)];
        for (score, want) in cases {
            assert_eq!(rank_of(score, &scores), want, "{score}");
        }
    }
}
