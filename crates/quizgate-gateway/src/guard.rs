//! What the node lets in before any quiz rule is asked: which browser origins,
//! which requests. Each refusal is counted in `refused_total` by reason.

/// The browser origins allowed to open a WebSocket or create a quiz
/// (`QUIZGATE_ALLOWED_ORIGINS`). Native clients send no `Origin` and are always
/// let in; a browser always sends one, so a page on another site is refused.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    /// Lower-cased `scheme://host[:port]`; empty allows every origin.
    allowed: Vec<String>,
}

impl Origins {
    pub(crate) fn new(allowed: &[String]) -> Self {
        Self {
            allowed: allowed
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect(),
        }
    }

    /// Whether a request with this `Origin` header (raw bytes) may go on.
    pub(crate) fn allows(&self, origin: Option<&[u8]>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        self.allowed.is_empty()
            || self
                .allowed
                .iter()
                .any(|a| a.as_bytes().eq_ignore_ascii_case(origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_and_without_case() {
        let o = Origins::new(&[
            "https://Quiz.example.com/".into(),
            " http://localhost:8080".into(),
        ]);
        assert!(o.allows(None), "native clients send no Origin");
        assert!(o.allows(Some(b"https://quiz.example.com")));
        assert!(o.allows(Some(b"http://localhost:8080")));
        assert!(!o.allows(Some(b"https://quiz.example.com.evil.test")));
        assert!(!o.allows(Some(b"http://quiz.example.com")));
        assert!(!o.allows(Some(b"null")));
        assert!(Origins::new(&[]).allows(Some(b"https://anywhere.test")));
    }
}
