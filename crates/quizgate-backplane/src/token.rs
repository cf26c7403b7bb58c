use std::fmt;

use quizgate_domain::{JoinCode, PlayerId};
use rand::RngCore;

/// A player's session token: `CODE.PLAYER.SECRET`. The code and player id say
/// where to look; the 128-bit secret proves the bearer is that player.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken {
    pub code: JoinCode,
    pub player_id: PlayerId,
    pub secret: String,
}

impl SessionToken {
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('.');
        let (code, player, secret) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || secret.len() != 32
            || !secret.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        Some(Self {
            code: JoinCode::parse(code).ok()?,
            player_id: player.parse().ok()?,
            secret: secret.to_owned(),
        })
    }
}

impl fmt::Display for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.code, self.player_id, self.secret)
    }
}

impl fmt::Debug for SessionToken {
    // Never log the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionToken({}.{}.…)", self.code, self.player_id)
    }
}

/// 128 random bits as 32 lower-case hex digits.
pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub(crate) fn new_code() -> JoinCode {
    let mut bytes = [0u8; quizgate_domain::JOIN_CODE_LEN];
    rand::rng().fill_bytes(&mut bytes);
    JoinCode::from_random(bytes)
}

/// Compares secrets in time that does not depend on where they differ.
pub(crate) fn secrets_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let secret = new_secret();
        let ok = format!("ABC234.7.{secret}");
        let t = SessionToken::parse(&ok).expect("valid");
        assert_eq!((t.code.as_str(), t.player_id), ("ABC234", 7));
        assert_eq!(t.to_string(), ok);
        for bad in [
            "",
            "ABC234.7",
            &format!("ABC234.x.{secret}"),
            &format!("ABC10O.7.{secret}"),
            "ABC234.7.abc",
            &format!("{ok}.1"),
            &format!("ABC234.7.{}", "g".repeat(32)),
        ] {
            assert!(SessionToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn secrets() {
        assert_eq!(new_secret().len(), 32);
        assert_ne!(new_secret(), new_secret());
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "ab"));
    }
}
