//! The backplanes from outside: the Lua scripts against their specification
//! (generated sequences of operations run on the in-process backplane, which
//! runs `quizgate-domain` directly, and on a real Redis, with one manual clock
//! for both), and the Redis subscriber's ordering when Pub/Sub loses messages.

mod batch;
mod differential;
mod gaps;
mod recorder;
