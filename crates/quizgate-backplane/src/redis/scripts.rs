//! The Lua scripts, each loaded with the shared prelude (which documents the
//! keys and the common arguments every script gets).

use fred::types::scripts::Script;

const PRELUDE: &str = include_str!("prelude.lua");

pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) join: Script,
    pub(super) resume: Script,
    pub(super) host: Script,
    pub(super) command: Script,
    pub(super) remove: Script,
    pub(super) answers: Script,
    pub(super) close: Script,
    pub(super) leaderboard: Script,
    pub(super) scores: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let s = |body: &str| Script::from_lua(format!("{PRELUDE}\n{body}"));
        Self {
            create: s(include_str!("create.lua")),
            join: s(include_str!("join.lua")),
            resume: s(include_str!("resume.lua")),
            host: s(include_str!("host.lua")),
            command: s(include_str!("command.lua")),
            remove: s(include_str!("remove.lua")),
            answers: s(include_str!("answers.lua")),
            close: s(include_str!("close.lua")),
            leaderboard: s(include_str!("leaderboard.lua")),
            scores: s(include_str!("scores.lua")),
        }
    }
}
