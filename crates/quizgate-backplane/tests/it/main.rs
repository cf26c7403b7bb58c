//! The Lua scripts against their specification: generated sequences of
//! operations run on the in-process backplane (which runs `quizgate-domain`
//! directly) and on a real Redis, with one manual clock for both.

mod differential;
