//! Signed session tokens. Every player and host token the node hands out is
//! `{inner}.{expiry}.{key id}.{mac}`: `inner` is what the backplane issued (a
//! player's `CODE.PLAYER.SECRET`, a host's secret), `expiry` the Unix time in
//! ms after which it is refused, and `mac` an HMAC-SHA256 (cluster key,
//! truncated to 128 bits) over the role, the quiz, `inner` and the expiry. A
//! token is checked here, in constant time, before any backplane call: a forged,
//! expired or other-quiz token never reaches Redis.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bytes of the MAC kept in a token (hex-encoded: twice as many characters).
const MAC_BYTES: usize = 16;
/// Least length of a session key's secret.
pub const MIN_SECRET_BYTES: usize = 32;

/// What a token lets its bearer be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Player,
    Host,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Player => "player",
            Self::Host => "host",
        }
    }
}

/// Why a token is refused; every case is `invalid_token` to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not `inner.expiry.kid.mac`.
    Malformed,
    /// Signed by a key this node does not have (retired, or never ours).
    UnknownKey,
    /// Past its expiry.
    Expired,
    /// The MAC does not match: forged, or for another quiz or role.
    Forged,
}

impl Refused {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Malformed => "not a session token",
            Self::UnknownKey => "session token signed by an unknown key",
            Self::Expired => "session token expired",
            Self::Forged => "forged session token, or one for another quiz",
        }
    }
}

/// One cluster key: an id (carried in tokens, so keys can rotate) and a secret.
#[derive(Clone)]
pub struct SessionKey {
    id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKey({})", self.id)
    }
}

impl SessionKey {
    /// Reads `id:secret-hex` (what `quizgate keygen session ID` prints).
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (id, hex) = entry
            .trim()
            .split_once(':')
            .ok_or("an entry is not id:secret-hex")?;
        let valid_id = !id.is_empty()
            && id.len() <= 16
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid_id {
            return Err(format!("key id {id:?}: 1 to 16 of A-Z a-z 0-9 - _"));
        }
        let secret = hex::decode(hex)
            .ok()
            .filter(|s| s.len() >= MIN_SECRET_BYTES)
            .ok_or_else(|| {
                format!("key {id}: the secret must be at least {MIN_SECRET_BYTES} bytes in hex")
            })?;
        Ok(Self {
            id: id.to_owned(),
            secret,
        })
    }

    /// A key of fresh random bytes: enough for one node on its own, whose
    /// tokens no other node needs to check.
    pub fn random(id: &str) -> Self {
        use rand::RngCore;
        let mut secret = [0u8; MIN_SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        Self::from_random(id, secret)
    }

    /// A key from random bytes the caller drew.
    pub fn from_random(id: &str, secret: [u8; MIN_SECRET_BYTES]) -> Self {
        Self {
            id: id.to_owned(),
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, role: Role, code: &str, inner: &str, expiry_ms: u64) -> [u8; MAC_BYTES] {
        // Any key length is valid for HMAC.
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.secret).expect("any key length");
        for part in [
            "quizgate-session-v1",
            role.as_str(),
            code,
            inner,
            &expiry_ms.to_string(),
        ] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }
}

/// The node's session keys: the first signs, all of them verify (so a key
/// being retired keeps working until the tokens it signed expire).
#[derive(Debug, Clone)]
pub struct SessionKeys {
    keys: Vec<SessionKey>,
    ttl_ms: u64,
}

impl SessionKeys {
    /// `keys` must not be empty: the first one signs.
    pub fn new(keys: Vec<SessionKey>, ttl: std::time::Duration) -> Option<Self> {
        (!keys.is_empty()).then(|| Self {
            keys,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Signs what the backplane issued, for `role` in quiz `code`.
    pub(crate) fn sign(&self, role: Role, code: &str, inner: &str, now_ms: u64) -> String {
        let key = &self.keys[0];
        let expiry = now_ms.saturating_add(self.ttl_ms);
        let mac = hex::encode(key.mac(role, code, inner, expiry));
        format!("{inner}.{expiry}.{}.{mac}", key.id)
    }

    /// Checks a token for `role` in quiz `code` (for a player token, the code
    /// its inner part names) and returns that inner part.
    pub(crate) fn verify<'t>(
        &self,
        role: Role,
        code: impl FnOnce(&str) -> Option<String>,
        token: &'t str,
        now_ms: u64,
    ) -> Result<&'t str, Refused> {
        let mut parts = token.rsplitn(4, '.');
        let (Some(mac), Some(kid), Some(expiry), Some(inner)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refused::Malformed);
        };
        let mac = hex::decode(mac)
            .ok()
            .filter(|m| m.len() == MAC_BYTES)
            .ok_or(Refused::Malformed)?;
        let expiry: u64 = expiry.parse().map_err(|_| Refused::Malformed)?;
        if !inner.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Refused::Malformed);
        }
        let code = code(inner).ok_or(Refused::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == kid)
            .ok_or(Refused::UnknownKey)?;
        let expected = key.mac(role, &code, inner, expiry);
        if !bool::from(expected.ct_eq(mac.as_slice())) {
            return Err(Refused::Forged);
        }
        if expiry <= now_ms {
            return Err(Refused::Expired);
        }
        Ok(inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn keys(ids: &[(&str, u8)]) -> SessionKeys {
        let keys = ids
            .iter()
            .map(|(id, fill)| SessionKey::from_random(id, [*fill; MIN_SECRET_BYTES]))
            .collect();
        SessionKeys::new(keys, Duration::from_secs(60)).expect("one key at least")
    }

    fn player_code(inner: &str) -> Option<String> {
        inner.split('.').next().map(str::to_owned)
    }

    #[test]
    fn tokens_hold_only_for_their_role_quiz_key_and_time() {
        let now = 1_000_000;
        let old = keys(&[("k1", 1)]);
        let token = old.sign(Role::Player, "ABC234", "ABC234.7.secret", now);
        assert_eq!(
            old.verify(Role::Player, player_code, &token, now + 1),
            Ok("ABC234.7.secret")
        );
        // Rotation: the new key signs, the old one still verifies.
        let rotated = keys(&[("k2", 2), ("k1", 1)]);
        assert!(
            rotated
                .verify(Role::Player, player_code, &token, now)
                .is_ok()
        );
        assert!(
            rotated
                .sign(Role::Player, "ABC234", "x", now)
                .contains(".k2.")
        );
        // Retired key, expiry, another role, tampering.
        let retired = keys(&[("k2", 2)]);
        assert_eq!(
            retired.verify(Role::Player, player_code, &token, now),
            Err(Refused::UnknownKey)
        );
        assert_eq!(
            old.verify(Role::Player, player_code, &token, now + 60_000),
            Err(Refused::Expired)
        );
        assert_eq!(
            old.verify(Role::Host, player_code, &token, now),
            Err(Refused::Forged)
        );
        let other_player = token.replacen(".7.", ".8.", 1);
        assert_eq!(
            old.verify(Role::Player, player_code, &other_player, now),
            Err(Refused::Forged)
        );
        let later = token.replace(&(now + 60_000).to_string(), &(now + 999_999).to_string());
        assert_eq!(
            old.verify(Role::Player, player_code, &later, now),
            Err(Refused::Forged)
        );
        // A host token is bound to its quiz.
        let host = old.sign(Role::Host, "ABC234", "hostsecret", now);
        let code = |c: &'static str| move |_: &str| Some(c.to_owned());
        assert!(old.verify(Role::Host, code("ABC234"), &host, now).is_ok());
        assert_eq!(
            old.verify(Role::Host, code("XYZ789"), &host, now),
            Err(Refused::Forged)
        );
        for bad in ["", "a.b", "x.1.k1.zz", &format!("{token}0")] {
            assert!(
                old.verify(Role::Player, player_code, bad, now).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_entries() {
        let hex = "ab".repeat(32);
        assert!(SessionKey::parse(&format!("k1:{hex}")).is_ok());
        for bad in [
            "k1".to_owned(),
            format!("k1:{}", "ab".repeat(31)),
            format!("bad id:{hex}"),
            format!("k1:{}", "zz".repeat(32)),
        ] {
            assert!(SessionKey::parse(&bad).is_err(), "{bad}");
        }
    }
}
