use crate::DomainError;

/// Longest nickname, in characters (not bytes).
pub const MAX_NICKNAME_CHARS: usize = 24;

/// Checks a nickname and returns it trimmed. Uniqueness is the quiz's business
/// (see [`crate::Quiz::join`]); this only checks the form.
pub fn validate_nickname(raw: &str) -> Result<&str, DomainError> {
    let nick = raw.trim();
    if nick.is_empty() {
        return Err(DomainError::InvalidNickname("must not be empty"));
    }
    if nick.chars().count() > MAX_NICKNAME_CHARS {
        return Err(DomainError::InvalidNickname("is longer than 24 characters"));
    }
    // Control and format characters (including bidi overrides and zero-width
    // joiners) would let one nickname impersonate another on the leaderboard.
    if nick.chars().any(|c| c.is_control() || is_format_char(c)) {
        return Err(DomainError::InvalidNickname(
            "contains control or invisible characters",
        ));
    }
    Ok(nick)
}

fn is_format_char(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// The key under which nicknames are compared for uniqueness: case-insensitive.
/// Stores that keep nicknames elsewhere (Redis) use the same key.
pub fn nickname_key(nick: &str) -> String {
    nick.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let long = "x".repeat(25);
        let max = "é".repeat(24);
        let cases: &[(&str, Option<&str>)] = &[
            ("ann", Some("ann")),
            ("  ann  ", Some("ann")),
            ("Zoë 🦀", Some("Zoë 🦀")),
            (&max, Some(&max)),
            ("", None),
            ("   ", None),
            (&long, None),
            ("a\nb", None),
            ("a\u{7}b", None),
            ("a\u{202E}b", None),
            ("a\u{200B}", None),
        ];
        for (raw, want) in cases {
            assert_eq!(validate_nickname(raw).ok(), *want, "{raw:?}");
        }
    }

    #[test]
    fn keys_ignore_case() {
        assert_eq!(nickname_key(" Ann "), nickname_key("aNN"));
    }
}
