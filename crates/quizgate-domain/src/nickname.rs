use crate::DomainError;

/// Longest nickname, in Unicode code points (not bytes, not grapheme clusters).
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
    // Control, invisible and bidi characters would let one nickname
    // impersonate another on the leaderboard.
    if nick.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(DomainError::InvalidNickname(
            "contains control or invisible characters",
        ));
    }
    Ok(nick)
}

/// Unicode's `Default_Ignorable_Code_Point` characters (DerivedCoreProperties.txt,
/// Unicode 15.1), which include every `Bidi_Control` character (U+061C,
/// U+200E–F, U+202A–E, U+2066–9): rendered as nothing, or reordering what follows.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
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
            // Bidi_Control and the rest of Default_Ignorable_Code_Point
            ("a\u{061C}b", None),
            ("a\u{2066}b", None),
            ("a\u{00AD}b", None),
            ("\u{3164}", None),
            ("a\u{FE0F}", None),
            ("a\u{E0041}", None),
            ("a\u{1BCA0}", None),
            ("a\u{180E}b", None),
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
