use fred::types::{Key, MultipleKeys};
use quizgate_domain::JoinCode;

/// The keys of one quiz. The `{q:CODE}` hash tag puts all of them, and the
/// quiz's channel, in one Redis Cluster slot, so each script is single-slot.
#[derive(Debug, Clone)]
pub(crate) struct QuizKeys {
    pub(crate) meta: String,
    pub(crate) def: String,
    pub(crate) nicks: String,
    pub(crate) players: String,
    pub(crate) secrets: String,
    pub(crate) scores: String,
    pub(crate) answers: String,
    pub(crate) dist: String,
    pub(crate) log: String,
    pub(crate) channel: String,
}

impl QuizKeys {
    pub(crate) fn new(code: &JoinCode) -> Self {
        let k = |suffix: &str| format!("{{q:{code}}}:{suffix}");
        Self {
            meta: k("meta"),
            def: k("def"),
            nicks: k("nicks"),
            players: k("players"),
            secrets: k("secrets"),
            scores: k("scores"),
            answers: k("answers"),
            dist: k("dist"),
            log: k("log"),
            channel: k("events"),
        }
    }

    /// The quiz's code, from one of its channel names.
    pub(crate) fn code_of_channel(channel: &str) -> Option<JoinCode> {
        let code = channel.strip_prefix("{q:")?.strip_suffix("}:events")?;
        JoinCode::parse(code).ok()
    }

    /// Every key, in the order the scripts expect (see `prelude.lua`).
    pub(crate) fn all(&self) -> MultipleKeys {
        let keys: Vec<Key> = [
            &self.meta,
            &self.def,
            &self.nicks,
            &self.players,
            &self.secrets,
            &self.scores,
            &self.answers,
            &self.dist,
            &self.log,
        ]
        .into_iter()
        .map(|k| Key::from(k.as_str()))
        .collect();
        keys.into()
    }
}
