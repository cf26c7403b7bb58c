use std::fmt;

use crate::DomainError;

/// Characters of a join code: digits and upper-case letters without the ones that
/// are easily confused when read aloud or off a projector (0/O, 1/I/L, U/V).
pub const JOIN_CODE_ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTWXYZ";
/// 29^6 ≈ 595 million codes: guessing one of a few thousand live quizzes takes
/// ~100k tries, far beyond what the per-connection rate limit lets through.
pub const JOIN_CODE_LEN: usize = 6;

/// The short code players type to join a quiz; it is also the quiz's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JoinCode(String);

impl JoinCode {
    /// Parses a code typed by a person: case and surrounding blanks are forgiven.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let code = raw.trim().to_ascii_uppercase();
        let ok = code.len() == JOIN_CODE_LEN
            && code
                .bytes()
                .all(|b| JOIN_CODE_ALPHABET.as_bytes().contains(&b));
        if ok {
            Ok(Self(code))
        } else {
            Err(DomainError::InvalidJoinCode)
        }
    }

    /// Builds a code from random bytes (one per character); the caller supplies
    /// the randomness so that this crate stays free of IO.
    pub fn from_random(bytes: [u8; JOIN_CODE_LEN]) -> Self {
        let alphabet = JOIN_CODE_ALPHABET.as_bytes();
        // 256 % 29 != 0, so this has a slight bias towards the first characters;
        // it costs well under one bit of the code's ~29 bits of entropy.
        Self(
            bytes
                .iter()
                .map(|b| alphabet[*b as usize % alphabet.len()] as char)
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JoinCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases = [
            ("ABC234", Some("ABC234")),
            ("  abc234 ", Some("ABC234")),
            ("ABC23", None),
            ("ABC2345", None),
            ("ABC10O", None), // 1, 0 and O are not in the alphabet
            ("ABCDÉF", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(
                JoinCode::parse(raw).ok().map(|c| c.0),
                want.map(String::from),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn random_codes_parse() {
        for seed in 0..=255u8 {
            let code =
                JoinCode::from_random([seed, seed.wrapping_mul(7), 3, 250, 128, seed ^ 0x5a]);
            assert_eq!(JoinCode::parse(code.as_str()).as_ref(), Ok(&code));
        }
    }
}
