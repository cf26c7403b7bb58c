//! What the node lets in before any quiz rule is asked: which browser origins,
//! which operators may create quizzes, how much one client address may do.
//! Each refusal is counted in `refused_total` by reason.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

/// What a failed join-code lookup (or a refused token) costs, in joins.
pub(crate) const FAILED_LOOKUP_COST: f64 = 10.0;
/// An address with no connection and no activity for this long is forgotten.
const ADDRESS_IDLE: Duration = Duration::from_secs(120);

/// Per-address limits (`QUIZGATE_*_PER_ADDRESS`).
#[derive(Debug, Clone, Copy)]
pub struct AddressLimits {
    /// Open client connections (WebSocket and HTTP) from one address.
    pub connections: u32,
    /// `join`, `resume` and `host` attempts per second (bursts of ten
    /// seconds' worth); a failed lookup costs [`FAILED_LOOKUP_COST`].
    pub joins_per_second: u32,
    /// Quiz creations per minute (bursts of a minute's worth).
    pub creates_per_minute: u32,
}

impl Default for AddressLimits {
    fn default() -> Self {
        Self {
            connections: 1000,
            joins_per_second: 100,
            creates_per_minute: 30,
        }
    }
}

/// Where a client comes from, as far as limits go: an IPv4 address, or the
/// /64 an IPv6 address belongs to (one host usually has a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    V4(u32),
    /// The top 64 bits.
    V6(u64),
}

impl AddressKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(u32::from(v4)),
                None => Self::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// What each client address holds and may still do.
#[derive(Debug)]
pub(crate) struct Addresses {
    limits: AddressLimits,
    seen: DashMap<AddressKey, Usage>,
}

#[derive(Debug)]
struct Usage {
    connections: u32,
    joins: TokenBucket,
    creates: TokenBucket,
    touched: Instant,
}

/// What an open client connection holds: a slot of the node's and one of its
/// address's, both released when it closes.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) key: AddressKey,
    _node: tokio::sync::OwnedSemaphorePermit,
    _address: AddressSlot,
}

impl Admitted {
    pub(crate) fn new(
        key: AddressKey,
        node: tokio::sync::OwnedSemaphorePermit,
        address: AddressSlot,
    ) -> Self {
        Self {
            key,
            _node: node,
            _address: address,
        }
    }
}

/// One connection's place among its address's: released on drop.
#[derive(Debug)]
pub(crate) struct AddressSlot {
    addresses: Arc<Addresses>,
    key: AddressKey,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some(mut usage) = self.addresses.seen.get_mut(&self.key) {
            usage.connections = usage.connections.saturating_sub(1);
            usage.touched = Instant::now();
        }
    }
}

impl Addresses {
    pub(crate) fn new(limits: AddressLimits) -> Self {
        Self {
            limits,
            seen: DashMap::new(),
        }
    }

    fn usage(&self, key: AddressKey) -> dashmap::mapref::one::RefMut<'_, AddressKey, Usage> {
        let limits = self.limits;
        let mut usage = self.seen.entry(key).or_insert_with(|| {
            let joins = f64::from(limits.joins_per_second);
            let creates = f64::from(limits.creates_per_minute) / 60.0;
            Usage {
                connections: 0,
                joins: TokenBucket::new(joins, 10.0 * joins),
                creates: TokenBucket::new(creates, f64::from(limits.creates_per_minute)),
                touched: Instant::now(),
            }
        });
        usage.touched = Instant::now();
        usage
    }

    /// A connection slot for this address, or `None` if it holds its limit.
    pub(crate) fn connect(self: &Arc<Self>, key: AddressKey) -> Option<AddressSlot> {
        let mut usage = self.usage(key);
        if usage.connections >= self.limits.connections {
            return None;
        }
        usage.connections += 1;
        Some(AddressSlot {
            addresses: Arc::clone(self),
            key,
        })
    }

    /// Takes one join attempt; false if the address is over its rate.
    pub(crate) fn join(&self, key: AddressKey) -> bool {
        self.usage(key).joins.take(1.0)
    }

    /// Charges the rest of a failed lookup's cost (the attempt was taken).
    pub(crate) fn lookup_failed(&self, key: AddressKey) {
        self.usage(key).joins.charge(FAILED_LOOKUP_COST - 1.0);
    }

    /// Takes one quiz creation; false if the address is over its rate.
    pub(crate) fn create(&self, key: AddressKey) -> bool {
        self.usage(key).creates.take(1.0)
    }

    /// Forgets addresses that hold nothing and did nothing for a while.
    pub(crate) fn sweep(&self) {
        self.seen
            .retain(|_, u| u.connections > 0 || u.touched.elapsed() < ADDRESS_IDLE);
    }

    pub(crate) fn tracked(&self) -> usize {
        self.seen.len()
    }
}

/// `rate` tokens per second, at most `burst` saved up.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes `n` tokens if there are that many.
    pub(crate) fn take(&mut self, n: f64) -> bool {
        self.refill();
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens whatever is left: the bucket may go into debt.
    pub(crate) fn charge(&mut self, n: f64) {
        self.refill();
        self.tokens -= n;
    }
}

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

/// The names the public port answers to (`QUIZGATE_ALLOWED_HOSTS`): a
/// request's `Host` must be one of them, whatever its port. A page that
/// rebinds its own DNS name to a node's address still sends its own name,
/// so it is refused. Empty allows any name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hosts {
    /// Lower-cased host names (or IP literals), without ports.
    allowed: Vec<String>,
}

impl Hosts {
    pub(crate) fn new(allowed: &[String]) -> Self {
        Self {
            allowed: allowed
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// Whether a request with this `Host` header (raw bytes) may go on.
    pub(crate) fn allows(&self, host: Option<&[u8]>) -> bool {
        if self.allowed.is_empty() {
            return true;
        }
        let Some(host) = host.and_then(|h| std::str::from_utf8(h).ok()) else {
            return false;
        };
        // `name`, `name:port`, `[v6]`, `[v6]:port`.
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.split(':').next().unwrap_or_default(),
        };
        self.allowed.iter().any(|a| {
            a.trim_start_matches('[')
                .trim_end_matches(']')
                .eq_ignore_ascii_case(name)
        })
    }
}

/// Who may create quizzes (`QUIZGATE_API_KEYS`, `QUIZGATE_JWT_KEYS`,
/// `QUIZGATE_OPEN_CREATE`).
#[derive(Debug, Clone, Default)]
pub enum CreateAccess {
    /// Anyone who reaches the public port: the embedded default for `make
    /// run`, or a Redis-backed node told so explicitly.
    #[default]
    Open,
    /// Holders of an API key or of a JWT the node can verify.
    Credentials(Credentials),
}

/// The operator credentials a node accepts; several of each at once, so
/// that keys rotate.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub api_keys: Vec<ApiKey>,
    pub jwt_keys: Vec<crate::jwt::JwtKey>,
    /// The `aud` a JWT must carry.
    pub jwt_audience: String,
}

/// The most a definition may weigh, whatever a quota says.
pub const MAX_DEFINITION_BYTES: u32 = 256 * 1024;

/// What one credential may hold at once (`QUIZGATE_QUOTA_*`); an API key's
/// entry or a JWT's `quota` claim may set each field for that credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Its quizzes live at once (created, not ended, not expired), across
    /// the cluster.
    pub live_quizzes: u32,
    /// Most players in one of its quizzes.
    pub players: u32,
    /// Most bytes in one of its definitions (at most [`MAX_DEFINITION_BYTES`]).
    pub definition_bytes: u32,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            live_quizzes: 100,
            players: quizgate_domain::MAX_PLAYERS,
            definition_bytes: MAX_DEFINITION_BYTES,
        }
    }
}

/// The fields of a [`Quota`] one credential sets for itself; the rest come
/// from the node's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuotaOverrides {
    pub(crate) live_quizzes: Option<u32>,
    pub(crate) players: Option<u32>,
    pub(crate) definition_bytes: Option<u32>,
}

impl QuotaOverrides {
    /// Reads `live_quizzes=5:players=300:definition_bytes=65536` (any of
    /// them, in any order).
    fn parse(fields: &str) -> Result<Self, String> {
        let mut o = Self::default();
        for field in fields.split(':') {
            let (name, value) = field
                .split_once('=')
                .ok_or_else(|| format!("quota {field:?} is not name=number"))?;
            let value: u32 = value
                .parse()
                .map_err(|_| format!("quota {name}: {value:?} is not a number"))?;
            let slot = match name {
                "live_quizzes" => &mut o.live_quizzes,
                "players" => &mut o.players,
                "definition_bytes" => &mut o.definition_bytes,
                other => {
                    return Err(format!(
                        "unknown quota {other:?}: live_quizzes, players or definition_bytes"
                    ));
                }
            };
            *slot = Some(value);
        }
        Ok(o)
    }

    /// The quota these overrides make of the node's `defaults`; the hard
    /// caps (players per quiz, definition size) hold whatever is asked.
    pub(crate) fn apply(self, defaults: Quota) -> Quota {
        Quota {
            live_quizzes: self.live_quizzes.unwrap_or(defaults.live_quizzes),
            players: self
                .players
                .unwrap_or(defaults.players)
                .min(quizgate_domain::MAX_PLAYERS),
            definition_bytes: self
                .definition_bytes
                .unwrap_or(defaults.definition_bytes)
                .min(MAX_DEFINITION_BYTES),
        }
    }
}

/// Who is creating a quiz: the credential's name (an API key's, or
/// `jwt:SUBJECT`) and the quota that name holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    pub(crate) name: String,
    pub(crate) overrides: QuotaOverrides,
}

/// Why a request may not create a quiz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unauthorized {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A key or a token that is not valid here.
    Wrong,
}

impl CreateAccess {
    /// The credential a request presents in `Authorization: Bearer …`
    /// (`None` when creation is open), or why it may not create. A bearer
    /// with two dots is a JWT, anything else an API key.
    pub(crate) fn check(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Option<Principal>, Unauthorized> {
        let Self::Credentials(creds) = self else {
            return Ok(None);
        };
        let presented = authorization
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .ok_or(Unauthorized::Missing)?;
        if presented.matches('.').count() == 2 {
            return crate::jwt::verify(&creds.jwt_keys, &creds.jwt_audience, presented)
                .map(Some)
                .ok_or(Unauthorized::Wrong);
        }
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Every key is compared, in constant time, whichever matches.
        let mut found = None;
        for key in &creds.api_keys {
            if bool::from(key.hash.ct_eq(&hash)) {
                found = Some(Principal {
                    name: key.name.clone(),
                    overrides: key.quota,
                });
            }
        }
        found.map(Some).ok_or(Unauthorized::Wrong)
    }
}

/// One operator credential: a name (for logs and quotas), the SHA-256 of the
/// key and the quota fields it sets. The key itself is never stored or
/// configured, only its hash.
#[derive(Clone)]
pub struct ApiKey {
    pub name: String,
    hash: [u8; 32],
    quota: QuotaOverrides,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({})", self.name)
    }
}

impl ApiKey {
    /// Reads `name:sha256-of-the-key-in-hex` (what `quizgate keygen`
    /// prints), optionally followed by quota fields:
    /// `name:hex:live_quizzes=5:players=300`.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (name, rest) = entry
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("{entry:?} is not name:sha256-hex"))?;
        let (digest, quota) = match rest.split_once(':') {
            Some((digest, fields)) => (
                digest,
                QuotaOverrides::parse(fields).map_err(|e| format!("key {name}: {e}"))?,
            ),
            None => (rest, QuotaOverrides::default()),
        };
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid_name {
            return Err(format!("key name {name:?}: 1 to 64 of A-Z a-z 0-9 - _ ."));
        }
        let hash = hex::decode(digest)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| format!("key {name}: {digest:?} is not 64 hex digits (a SHA-256)"))?;
        Ok(Self {
            name: name.to_owned(),
            hash,
            quota,
        })
    }

    /// The configuration entry for a key: `name:sha256-hex`.
    pub fn entry(name: &str, key: &str) -> String {
        format!("{name}:{}", hex::encode(Sha256::digest(key.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn token_bucket_allows_bursts_then_the_rate() {
        let mut b = TokenBucket::new(5.0, 10.0);
        assert_eq!((0..12).filter(|_| b.take(1.0)).count(), 10, "the burst");
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert_eq!((0..12).filter(|_| b.take(1.0)).count(), 5, "then the rate");
        b.charge(10.0);
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert!(!b.take(1.0), "a debt is paid back before anything else");
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_holds_its_connections_and_pays_for_failed_lookups() {
        let limits = AddressLimits {
            connections: 2,
            joins_per_second: 1,
            creates_per_minute: 60,
        };
        let addresses = Arc::new(Addresses::new(limits));
        let a = AddressKey::of("127.0.0.2".parse().expect("ip"));
        let b = AddressKey::of("::ffff:127.0.0.3".parse().expect("ip"));
        let (s1, s2) = (addresses.connect(a), addresses.connect(a));
        assert!(s1.is_some() && s2.is_some());
        assert!(
            addresses.connect(a).is_none(),
            "a third from the same address"
        );
        let sb = addresses.connect(b);
        assert!(sb.is_some(), "another address is not affected");
        drop(s1);
        let s3 = addresses.connect(a);
        assert!(s3.is_some(), "a slot comes back on close");
        // 10 joins of burst; a failed lookup costs 10 of them.
        assert!(addresses.join(a));
        addresses.lookup_failed(a);
        assert!(!addresses.join(a), "the failure used the burst up");
        assert!(addresses.join(b));
        // Idle addresses are forgotten; ones with connections are kept.
        tokio::time::advance(ADDRESS_IDLE + Duration::from_secs(1)).await;
        addresses.sweep();
        assert_eq!(addresses.tracked(), 2, "both still hold a connection");
        drop((s2, s3, sb));
        addresses.sweep();
        assert_eq!(addresses.tracked(), 2, "just closed: not idle yet");
        let six = Arc::new(Addresses::new(limits));
        let v6a = AddressKey::of("2001:db8::1".parse().expect("ip"));
        let v6b = AddressKey::of("2001:db8::2".parse().expect("ip"));
        assert_eq!(v6a, v6b, "one /64 is one address");
        assert_ne!(v6a, AddressKey::of("2001:db8:0:1::1".parse().expect("ip")));
        drop(six.connect(v6a));
        tokio::time::advance(ADDRESS_IDLE + Duration::from_secs(1)).await;
        six.sweep();
        assert_eq!(six.tracked(), 0);
    }

    #[test]
    fn hosts_are_matched_by_name_whatever_the_port() {
        let hosts = Hosts::new(&["Quiz.Example.com".into(), "[::1]".into(), " ".into()]);
        for ok in [
            "quiz.example.com",
            "QUIZ.example.com:8443",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(hosts.allows(Some(ok.as_bytes())), "{ok}");
        }
        for bad in ["evil.example", "quiz.example.com.evil", "127.0.0.1", ""] {
            assert!(!hosts.allows(Some(bad.as_bytes())), "{bad}");
        }
        assert!(!hosts.allows(None), "no Host at all");
        assert!(
            Hosts::new(&[]).allows(Some(b"anything")),
            "empty allows any"
        );
    }

    #[test]
    fn a_quota_takes_what_a_credential_sets_within_the_hard_caps() {
        let defaults = Quota {
            live_quizzes: 100,
            players: 1000,
            definition_bytes: 4096,
        };
        assert_eq!(QuotaOverrides::default().apply(defaults), defaults);
        let own = QuotaOverrides::parse("players=50:live_quizzes=3").expect("valid");
        assert_eq!(
            own.apply(defaults),
            Quota {
                live_quizzes: 3,
                players: 50,
                definition_bytes: 4096
            }
        );
        let greedy =
            QuotaOverrides::parse("players=4000000000:definition_bytes=4000000000").expect("valid");
        assert_eq!(greedy.apply(defaults).players, quizgate_domain::MAX_PLAYERS);
        assert_eq!(
            greedy.apply(defaults).definition_bytes,
            MAX_DEFINITION_BYTES
        );
    }

    #[test]
    fn api_keys_are_checked_by_their_hash() {
        let a = ApiKey::parse(&ApiKey::entry("ops", "qgk_first")).expect("valid");
        let b = ApiKey::parse(&format!(
            "{}:live_quizzes=2:players=30",
            ApiKey::entry("ci-2", "qgk_second")
        ))
        .expect("valid");
        let principal = |name: &str, overrides| Principal {
            name: name.into(),
            overrides,
        };
        let access = CreateAccess::Credentials(Credentials {
            api_keys: vec![a, b],
            ..Credentials::default()
        });
        assert_eq!(
            access.check(Some(b"Bearer qgk_first")),
            Ok(Some(principal("ops", QuotaOverrides::default())))
        );
        assert_eq!(
            access.check(Some(b"bearer  qgk_second")),
            Ok(Some(principal(
                "ci-2",
                QuotaOverrides {
                    live_quizzes: Some(2),
                    players: Some(30),
                    definition_bytes: None
                }
            )))
        );
        assert_eq!(
            access.check(Some(b"Bearer a.b.c")),
            Err(Unauthorized::Wrong),
            "no JWT keys"
        );
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
            &format!("ops:{}:players", "0".repeat(64)),
            &format!("ops:{}:players=-1", "0".repeat(64)),
            &format!("ops:{}:rooms=3", "0".repeat(64)),
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
