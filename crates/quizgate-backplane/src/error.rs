/// A backplane call that could not be carried out. Expected outcomes (a taken
/// nickname, a late answer) are values, never errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackplaneError {
    /// The backing service cannot be reached now; the same call may succeed later.
    #[error("backplane unavailable: {0}")]
    Unavailable(String),
    /// The caller's node has too many calls in flight and this one waited its
    /// limit for a slot: nothing reached the backing service, so a retry is safe.
    #[error("node busy: {0}")]
    Busy(String),
    /// Stored data could not be read back; a bug or a foreign writer.
    #[error("backplane data corrupt: {0}")]
    Corrupt(String),
}
