/// Why a quiz definition, a nickname or a join code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    InvalidDefinition { field: String, reason: String },
    #[error("nickname {0}")]
    InvalidNickname(&'static str),
    #[error("join code must be {len} characters from {alphabet}", len = crate::JOIN_CODE_LEN, alphabet = crate::JOIN_CODE_ALPHABET)]
    InvalidJoinCode,
}

impl DomainError {
    pub(crate) fn definition(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidDefinition {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
