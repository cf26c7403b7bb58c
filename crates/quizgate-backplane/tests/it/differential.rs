//! Differential test: `quizgate-domain` is the specification, the Redis Lua
//! scripts are a second implementation of it. proptest generates sequences of
//! operations (joins with duplicate nicknames and past the player cap, right,
//! wrong, repeated, late and out-of-phase answers, batches of answers (the
//! group commit's one script call, judged one after the other on the memory
//! side), host commands in and out of
//! phase, deadlines passing, coalesced leaderboards, hosts' progress, resumes inside, before and
//! beyond the trimmed log, host reconnects); each runs on a fresh quiz on both
//! backplanes, and every outcome, snapshot, event (with scores, ranks and
//! timestamps) and final score list must be equal. Time is a manual clock
//! that both sides read (Redis gets it as a script argument), so nothing sleeps.
//!
//! `PROPTEST_CASES` sets the number of cases (default below) and `DIFF_SEED`
//! the seed (a fixed default, so that CI explores the same cases every run and
//! the coverage check at the end is stable; `DIFF_SEED=$RANDOM` explores others).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use quizgate_backplane::{
    Backplane, CreateLimits, HostSession, JoinResult, ManualClock, MemoryBackplane, MemoryConfig,
    RedisBackplane, RedisConfig, ResumeResult, Scores, SessionToken,
};
use quizgate_domain::{HostCommand, JoinCode, PlayerId, Question, QuizDefinition, Sequenced};
use quizgate_testkit::RedisServer;

use crate::recorder::Recorder;

const NICKNAMES: &[&str] = &[
    "ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal", "ida", "jo", "kim", "lu", "max", "ned",
];
/// Fewer than the nicknames, more than a leaderboard: `quiz_full` and the
/// top-10 cut are both reachable. Each quiz is created with this cap (its
/// creator's quota), below the backplanes' own, so `full` comes from the
/// quiz's cap on both sides.
const MAX_PLAYERS: u32 = 11;
/// The backplanes' own cap, above the quiz's.
const BACKPLANE_MAX_PLAYERS: u32 = 13;
/// Small, so that resumes fall before the log's start.
const LOG_CAPACITY: usize = 6;
const LEADERBOARD_INTERVAL_MS: u64 = 250;
const DEFAULT_CASES: u32 = 256;
const DEFAULT_SEED: u64 = 0x5157_1a7e;

#[derive(Debug, Clone)]
enum Op {
    Join {
        nick: usize,
        shout: bool,
    },
    /// `player` indexes the joined players; one past them is an unknown id.
    Answer {
        player: usize,
        question: u16,
        choice: u8,
    },
    /// Answers committed together: one `answer_batch` call on Redis, one
    /// `answer` after the other on memory.
    Answers(Vec<(usize, u16, u8)>),
    Command(HostCommand),
    /// What a host follows live (`Backplane::progress`).
    Progress,
    Advance(u64),
    Close(u16),
    Leaderboard,
    Resume {
        player: usize,
        last_seq: u64,
        forged: bool,
    },
    Host {
        right: bool,
        last_seq: Option<u64>,
    },
    /// The host removes a player (`kick`); sometimes an unknown id.
    Remove(usize),
}

fn join() -> impl Strategy<Value = Op> {
    (0..NICKNAMES.len(), prop::bool::weighted(0.2))
        .prop_map(|(nick, shout)| Op::Join { nick, shout })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => join(),
        12 => (0usize..64, 0u16..4, prop_oneof![4 => 0u8..2, 1 => 0u8..5])
            .prop_map(|(player, question, choice)| Op::Answer { player, question, choice }),
        6 => prop::collection::vec((0usize..64, 0u16..4, prop_oneof![4 => 0u8..2, 1 => 0u8..5]), 2..12)
            .prop_map(Op::Answers),
        5 => prop_oneof![
            3 => Just(HostCommand::Start), 4 => Just(HostCommand::Next),
            2 => Just(HostCommand::Skip), 1 => Just(HostCommand::End),
            1 => Just(HostCommand::Lock), 1 => Just(HostCommand::Unlock),
        ].prop_map(Op::Command),
        2 => (0usize..64).prop_map(Op::Remove),
        5 => prop_oneof![3 => Just(0u64), 3 => 1u64..300, 2 => 300u64..2_500].prop_map(Op::Advance),
        3 => (0u16..3).prop_map(Op::Close),
        2 => Just(Op::Leaderboard),
        2 => Just(Op::Progress),
        2 => (0usize..64, 0u64..40, prop::bool::weighted(0.1))
            .prop_map(|(player, last_seq, forged)| Op::Resume { player, last_seq, forged }),
        1 => (prop::bool::weighted(0.8), prop::option::of(0u64..40)).prop_map(|(right, last_seq)| Op::Host { right, last_seq }),
    ]
}

/// A case: some players join, then anything happens.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    let joins = prop_oneof![
        prop::collection::vec(join(), 0..3),
        prop::collection::vec(join(), 3..9),
        prop::collection::vec(join(), 9..24),
    ];
    (joins, prop::collection::vec(op(), 1..70)).prop_map(|(mut joins, rest)| {
        joins.extend(rest);
        joins
    })
}

fn definition() -> QuizDefinition {
    let q = |choices: usize, correct, time_limit_ms, points| Question {
        text: "q".into(),
        choices: (0..choices).map(|c| format!("c{c}")).collect(),
        correct,
        time_limit_ms,
        points,
    };
    QuizDefinition {
        title: "differential".into(),
        questions: vec![
            q(2, 1, 1_000, 1_000),
            q(4, 3, 2_000, 777),
            q(3, 0, 1_500, 0),
        ],
    }
}

/// One backplane under test.
struct Side {
    bp: Arc<dyn Backplane>,
    /// The Redis side, for its batch call.
    redis: Option<Arc<RedisBackplane>>,
    sink: Arc<Recorder>,
}

/// One side's quiz in the current case.
struct Quiz {
    code: JoinCode,
    host_token: String,
    /// Session tokens of the players that joined, in join order.
    tokens: Vec<String>,
}

impl Side {
    async fn start(&self) -> Result<Quiz> {
        let limits = CreateLimits {
            max_players: MAX_PLAYERS,
            ..CreateLimits::unlimited()
        };
        let quiz = self
            .bp
            .create_quiz(definition(), &limits)
            .await?
            .created()
            .context("no quota here")?;
        self.bp.subscribe(&quiz.code).await?;
        Ok(Quiz {
            code: quiz.code,
            host_token: quiz.host_token,
            tokens: Vec::new(),
        })
    }

    async fn scores(&self, quiz: &Quiz) -> Result<Option<Scores>> {
        Ok(self.bp.scores(&quiz.code).await?)
    }

    /// Applies one op and describes its outcome without codes and secrets,
    /// which differ between the sides by design.
    async fn apply(&self, quiz: &mut Quiz, op: &Op) -> Result<String> {
        let (bp, code) = (&self.bp, &quiz.code);
        Ok(match op {
            Op::Join { nick, shout } => {
                let name = if *shout {
                    NICKNAMES[*nick].to_uppercase()
                } else {
                    NICKNAMES[*nick].to_owned()
                };
                match bp.join(code, &name).await? {
                    JoinResult::Joined(s) => {
                        quiz.tokens.push(s.token.clone());
                        format!("joined {} {:?}", s.player_id, s.snapshot)
                    }
                    other => format!("{other:?}"),
                }
            }
            Op::Answer {
                player,
                question,
                choice,
            } => {
                // Mostly a joined player; one choice in n+1 is an unknown id.
                let id = (*player % (quiz.tokens.len() + 1)) as PlayerId + 1;
                match bp.answer(code, id, *question, *choice).await? {
                    None => "answer None".into(),
                    some => format!("{some:?}"),
                }
            }
            Op::Answers(batch) => {
                let batch: Vec<(PlayerId, u16, u8)> = batch
                    .iter()
                    .map(|&(p, q, c)| ((p % (quiz.tokens.len() + 1)) as PlayerId + 1, q, c))
                    .collect();
                let outcomes = match &self.redis {
                    Some(redis) => match redis.answer_batch(code, &batch).await? {
                        Some(each) => each,
                        None => vec![None; batch.len()],
                    },
                    None => {
                        let mut each = Vec::new();
                        for &(id, q, c) in &batch {
                            each.push(bp.answer(code, id, q, c).await?);
                        }
                        each
                    }
                };
                let described: Vec<String> = outcomes
                    .iter()
                    .map(|o| match o {
                        None => "answer None".into(),
                        some => format!("{some:?}"),
                    })
                    .collect();
                format!("batch: {}", described.join("; "))
            }
            Op::Command(cmd) => format!("{:?}", bp.command(code, *cmd).await?),
            Op::Advance(_) => String::new(),
            Op::Close(index) => format!("{:?}", bp.close_if_due(code, *index).await?),
            Op::Leaderboard => format!("{:?}", bp.leaderboard_if_due(code).await?),
            Op::Progress => format!("{:?}", bp.progress(code).await?),
            Op::Resume {
                player,
                last_seq,
                forged,
            } => {
                let Some(raw) = quiz.tokens.get(*player % quiz.tokens.len().max(1)) else {
                    return Ok("nobody to resume".into());
                };
                let mut token = SessionToken::parse(raw).expect("own token");
                if *forged {
                    token.secret = "0".repeat(32);
                }
                match bp.resume(&token, *last_seq).await? {
                    ResumeResult::Resumed { session, missed } => format!(
                        "resumed {} {:?} missed {missed:?}",
                        session.player_id, session.snapshot
                    ),
                    other => format!("{other:?}"),
                }
            }
            Op::Host { right, last_seq } => {
                let token = if *right {
                    quiz.host_token.as_str()
                } else {
                    "0123456789abcdef0123456789abcdef"
                };
                match bp.host(code, token, *last_seq).await? {
                    Some(HostSession { snapshot, missed }) => {
                        format!("host {snapshot:?} missed {missed:?}")
                    }
                    None => "host refused".into(),
                }
            }
            Op::Remove(player) => {
                let id = (*player % (quiz.tokens.len() + 1)) as PlayerId + 1;
                format!("remove {id}: {:?}", bp.remove(code, id).await?)
            }
        })
    }
}

struct World {
    memory: Side,
    redis: Side,
    clock: Arc<ManualClock>,
    /// How often each kind of outcome or event occurred, over all cases.
    seen: Mutex<HashMap<&'static str, usize>>,
    _server: RedisServer,
}

/// Outcomes and events the generated cases must reach, or the test proves little.
const MUST_SEE: &[(&str, &str)] = &[
    ("accepted", "Accepted("),
    ("duplicate", "Duplicate("),
    ("late", "Some(Late)"),
    ("wrong phase answer", "Some(WrongPhase)"),
    ("invalid choice", "Some(InvalidChoice)"),
    ("unknown player", "answer None"),
    ("nickname taken", "NicknameTaken"),
    ("quiz full", "QuizFull"),
    ("quiz ended", "QuizEnded)"),
    ("command done", "Some(Done)"),
    ("command in the wrong phase", "Some(WrongPhase)"),
    ("deadline close", "Deadline"),
    ("all answered", "AllAnswered"),
    ("skipped", "Skipped"),
    ("ended during a question", "reason: Ended"),
    ("leaderboard too soon", "TooSoon"),
    ("leaderboard published", "Published"),
    ("resume replayed", "missed Some(["),
    ("resume past the log or ahead", "missed None"),
    ("forged token", "InvalidToken"),
    ("host refused", "host refused"),
    ("top-10 cut", "TOPCUT"),
    ("tie", "TIE"),
    ("batched answers", "batch: "),
    ("progress outside a question", "question: None })"),
    (
        "progress during a question",
        "question: Some(QuestionProgress",
    ),
    (
        "a batch's answer closes the question, later ones are late",
        "BATCHLATE",
    ),
];

async fn world() -> Result<World> {
    let server = RedisServer::start_ephemeral().await?;
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let memory_sink = Arc::new(Recorder::default());
    let memory = MemoryBackplane::new(
        memory_sink.clone(),
        clock.clone(),
        MemoryConfig {
            leaderboard_interval_ms: LEADERBOARD_INTERVAL_MS,
            log_capacity: LOG_CAPACITY,
            max_players: BACKPLANE_MAX_PLAYERS,
            ..MemoryConfig::default()
        },
    );
    let redis_sink = Arc::new(Recorder::default());
    let redis = Arc::new(
        RedisBackplane::connect(
            RedisConfig {
                leaderboard_interval_ms: LEADERBOARD_INTERVAL_MS,
                log_capacity: LOG_CAPACITY,
                max_players: BACKPLANE_MAX_PLAYERS,
                clock: Some(clock.clone()),
                ..RedisConfig::new(server.url())
            },
            redis_sink.clone(),
        )
        .await?,
    );
    Ok(World {
        memory: Side {
            bp: Arc::new(memory),
            redis: None,
            sink: memory_sink,
        },
        redis: Side {
            bp: redis.clone(),
            redis: Some(redis),
            sink: redis_sink,
        },
        clock,
        seen: Mutex::new(HashMap::new()),
        _server: server,
    })
}

impl World {
    fn note(&self, text: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for (name, pattern) in MUST_SEE {
            if text.contains(pattern) {
                *seen.entry(name).or_default() += 1;
            }
        }
    }
}

/// Whether two players of a leaderboard share a rank.
fn has_tie(e: &Sequenced) -> bool {
    let top = match &e.event {
        quizgate_domain::Event::Leaderboard { top, .. }
        | quizgate_domain::Event::QuizEnded { top, .. } => top,
        _ => return false,
    };
    top.windows(2)
        .any(|w| w[0].rank == w[1].rank && w[0].score > 0)
}

/// Runs one case on both sides in lockstep: each op on memory, then on Redis
/// at the same instant, outcomes compared; then the events and scores.
async fn case(world: &World, ops: &[Op]) -> Result<(), TestCaseError> {
    let fail = |e: anyhow::Error| TestCaseError::fail(format!("{e:#}"));
    let mut a = world.memory.start().await.map_err(fail)?;
    let mut b = world.redis.start().await.map_err(fail)?;
    for (i, op) in ops.iter().enumerate() {
        if let Op::Advance(ms) = op {
            world.clock.advance(*ms);
        }
        let x = world.memory.apply(&mut a, op).await.map_err(fail)?;
        let y = world.redis.apply(&mut b, op).await.map_err(fail)?;
        world.note(&x);
        if let Some(at) = x.find("Accepted(")
            && x.starts_with("batch: ")
            && x[at..].contains("Some(Late)")
        {
            world.note("BATCHLATE");
        }
        prop_assert_eq!(x, y, "op {} {:?}", i, op);
    }
    let sa = world.memory.scores(&a).await.map_err(fail)?;
    let sb = world.redis.scores(&b).await.map_err(fail)?;
    prop_assert_eq!(&sa, &sb, "final scores");
    let n = sa.map_or(0, |s| s.seq as usize);
    let ea = world.memory.sink.events(&a.code, n).await.map_err(fail)?;
    let eb = world.redis.sink.events(&b.code, n).await.map_err(fail)?;
    prop_assert_eq!(ea.len(), n, "memory delivered more events than its seq");
    prop_assert_eq!(&ea, &eb, "events");
    for e in &ea {
        world.note(&format!("{e:?}"));
        if has_tie(e) {
            world.note("TIE");
        }
        if let quizgate_domain::Event::Leaderboard { top, players, .. } = &e.event
            && top.len() == quizgate_domain::LEADERBOARD_SIZE
            && *players as usize > top.len()
        {
            world.note("TOPCUT");
        }
    }
    Ok(())
}

#[test]
fn memory_and_redis_agree_on_generated_quizzes() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let world = rt.block_on(world())?;
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed = std::env::var("DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("differential: {cases} cases, DIFF_SEED={seed}");
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    });
    runner
        .run(&ops(), |ops| rt.block_on(case(&world, &ops)))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let seen = world.seen.lock().unwrap_or_else(|p| p.into_inner());
    eprintln!("outcomes seen over {cases} cases: {seen:?}");
    let missing: Vec<&str> = MUST_SEE
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !seen.contains_key(name))
        .collect();
    anyhow::ensure!(
        missing.is_empty() || cases < DEFAULT_CASES,
        "the generated cases never reached: {missing:?}"
    );
    Ok(())
}
