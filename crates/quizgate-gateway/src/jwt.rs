//! JWTs as operator credentials for the hosts' API, beside API keys: an
//! identity provider (or the operator's own backend) signs short-lived
//! tokens; nodes hold only what verifies them. HS256 (a shared secret) and
//! the asymmetric RS256 and EdDSA (a public key in a PEM file) are accepted,
//! several keys at once so that keys rotate; `exp` and `aud` are required,
//! `nbf` is checked when present. Verification is `jsonwebtoken`'s.

use crate::guard::{Principal, QuotaOverrides};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// One verification key: its algorithm, its id (matched against a token's
/// `kid` when the token names one) and the key.
#[derive(Clone)]
pub struct JwtKey {
    id: String,
    alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwtKey({:?} {})", self.alg, self.id)
    }
}

impl JwtKey {
    /// Reads `hs256:ID:SECRET-HEX`, `rs256:ID:PUBLIC-KEY.pem` or
    /// `eddsa:ID:PUBLIC-KEY.pem` (the PEM file is read now).
    pub fn parse(entry: &str) -> Result<Self, String> {
        let mut parts = entry.trim().splitn(3, ':');
        let (Some(alg), Some(id), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("an entry is not alg:id:key (hs256, rs256 or eddsa)".into());
        };
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("key id {id:?}: 1 to 64 visible characters"));
        }
        let pem =
            || std::fs::read(value).map_err(|e| format!("key {id}: cannot read {value}: {e}"));
        let (alg, key) = match alg.to_ascii_lowercase().as_str() {
            "hs256" => {
                let secret = hex::decode(value)
                    .ok()
                    .filter(|s| s.len() >= 32)
                    .ok_or_else(|| {
                        format!("key {id}: an HS256 secret is at least 32 bytes in hex")
                    })?;
                (Algorithm::HS256, DecodingKey::from_secret(&secret))
            }
            "rs256" => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(&pem()?)
                    .map_err(|e| format!("key {id}: not an RSA public key in PEM: {e}"))?,
            ),
            "eddsa" => (
                Algorithm::EdDSA,
                DecodingKey::from_ed_pem(&pem()?)
                    .map_err(|e| format!("key {id}: not an Ed25519 public key in PEM: {e}"))?,
            ),
            other => {
                return Err(format!(
                    "key {id}: algorithm {other:?} is not hs256, rs256 or eddsa"
                ));
            }
        };
        Ok(Self {
            id: id.to_owned(),
            alg,
            key,
        })
    }
}

/// The claims read; `sub` names the credential in logs and for its quota,
/// which `quota` may set (the issuer is trusted as an API key's entry is).
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    quota: QuotaOverrides,
}

/// Verifies a JWT against the keys of its algorithm (and its `kid`, if it
/// names one); `Some` of who it names (`jwt:SUBJECT`) if one key verifies it
/// and its claims hold.
pub(crate) fn verify(keys: &[JwtKey], audience: &str, token: &str) -> Option<Principal> {
    let header = decode_header(token).ok()?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    keys.iter()
        .filter(|k| k.alg == header.alg)
        .filter(|k| header.kid.as_deref().is_none_or(|kid| kid == k.id))
        .find_map(|k| decode::<Claims>(token, &k.key, &validation).ok())
        .map(|data| {
            let sub: String = data
                .claims
                .sub
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect();
            Principal {
                name: format!("jwt:{sub}"),
                overrides: data.claims.quota,
            }
        })
}
