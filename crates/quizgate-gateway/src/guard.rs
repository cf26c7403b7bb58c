//! What the node lets in before any quiz rule is asked: which browser origins,
//! which operators may create quizzes. Each refusal is counted in
//! `refused_total` by reason.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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

/// Who may create quizzes (`QUIZGATE_API_KEYS`, `QUIZGATE_OPEN_CREATE`).
#[derive(Debug, Clone, Default)]
pub enum CreateAccess {
    /// Anyone who reaches the public port: the embedded default for `make
    /// run`, or a Redis-backed node told so explicitly.
    #[default]
    Open,
    /// Holders of one of these API keys (several, so that keys can rotate).
    Keys(Vec<ApiKey>),
}

/// Why a request may not create a quiz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unauthorized {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A key that is not one of the node's.
    Wrong,
}

impl CreateAccess {
    /// The name of the key a request presents in `Authorization: Bearer <key>`
    /// (`None` when creation is open), or why it may not create.
    pub(crate) fn check(&self, authorization: Option<&[u8]>) -> Result<Option<&str>, Unauthorized> {
        let Self::Keys(keys) = self else {
            return Ok(None);
        };
        let presented = authorization
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .ok_or(Unauthorized::Missing)?;
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every key is compared, in constant time, whichever matches.
        let mut found = None;
        for key in keys {
            if bool::from(key.hash.ct_eq(&hash)) {
                found = Some(key.name.as_str());
            }
        }
        found.map(Some).ok_or(Unauthorized::Wrong)
    }
}

/// One operator credential: a name (for logs) and the SHA-256 of the key.
/// The key itself is never stored or configured, only its hash.
#[derive(Clone)]
pub struct ApiKey {
    pub name: String,
    hash: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({})", self.name)
    }
}

impl ApiKey {
    /// Reads `name:sha256-of-the-key-in-hex` (what `quizgate keygen` prints).
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (name, hex) = entry
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("{entry:?} is not name:sha256-hex"))?;
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid_name {
            return Err(format!("key name {name:?}: 1 to 64 of A-Z a-z 0-9 - _ ."));
        }
        let hash = from_hex(hex)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| format!("key {name}: {hex:?} is not 64 hex digits (a SHA-256)"))?;
        Ok(Self {
            name: name.to_owned(),
            hash,
        })
    }

    /// The configuration entry for a key: `name:sha256-hex`.
    pub fn entry(name: &str, key: &str) -> String {
        format!("{name}:{}", to_hex(&Sha256::digest(key.as_bytes())))
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_checked_by_their_hash() {
        let a = ApiKey::parse(&ApiKey::entry("ops", "qgk_first")).expect("valid");
        let b = ApiKey::parse(&ApiKey::entry("ci-2", "qgk_second")).expect("valid");
        let access = CreateAccess::Keys(vec![a, b]);
        assert_eq!(access.check(Some(b"Bearer qgk_first")), Ok(Some("ops")));
        assert_eq!(access.check(Some(b"bearer  qgk_second")), Ok(Some("ci-2")));
        assert_eq!(
            access.check(Some(b"Bearer qgk_third")),
            Err(Unauthorized::Wrong)
        );
        assert_eq!(
            access.check(Some(b"Basic qgk_first")),
            Err(Unauthorized::Missing)
        );
        assert_eq!(access.check(None), Err(Unauthorized::Missing));
        assert_eq!(CreateAccess::Open.check(None), Ok(None));
        for bad in [
            "ops",
            "ops:abc",
            ":00",
            &format!("a b:{}", "0".repeat(64)),
            &format!("ops:{}", "g".repeat(64)),
        ] {
            assert!(ApiKey::parse(bad).is_err(), "{bad}");
        }
    }

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
