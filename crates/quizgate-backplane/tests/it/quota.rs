//! Quotas on both backplanes: an owner's live quizzes are counted (ended and
//! expired ones give their place back), other owners are not affected, a
//! quiz admits the players its limits say, and on Redis a burst of creations
//! from two nodes never takes more places than the quota.

use std::sync::Arc;

use anyhow::{Context, Result};
use futures_util::future::join_all;
use quizgate_backplane::{
    Backplane, Clock, CreateLimits, Creation, JoinResult, ManualClock, MemoryBackplane,
    MemoryConfig, RedisBackplane, RedisConfig,
};
use quizgate_domain::{HostCommand, JoinCode, JoinRefused};
use quizgate_testkit::RedisServer;

use crate::recorder::Recorder;

fn limits(owner: &str, live_quizzes: u32, max_players: u32) -> CreateLimits {
    CreateLimits {
        owner: Some(owner.into()),
        live_quizzes,
        max_players,
    }
}

async fn create(bp: &dyn Backplane, limits: &CreateLimits) -> Result<Option<JoinCode>> {
    let creation = bp.create_quiz(crate::one_question("quota"), limits).await?;
    Ok(creation.created().map(|q| q.code))
}

/// What every backplane must do; `expire(gone, keep)` makes a quiz vanish
/// as its TTL would, and not the others.
async fn quotas_hold(
    bp: &dyn Backplane,
    expire: impl AsyncFn(&JoinCode, &[JoinCode]) -> Result<()>,
) -> Result<()> {
    let three = limits("ops", 3, 2);
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(create(bp, &three).await?.context("within the quota")?);
    }
    assert_eq!(
        bp.create_quiz(crate::one_question("quota"), &three).await?,
        Creation::OverQuota,
        "a fourth live quiz"
    );
    assert!(
        create(bp, &limits("other", 3, 2)).await?.is_some(),
        "another owner has places of its own"
    );
    assert!(
        create(bp, &CreateLimits::unlimited()).await?.is_some(),
        "no owner: nothing counted"
    );

    bp.command(&codes[0], HostCommand::End).await?;
    let fourth = create(bp, &three)
        .await?
        .context("an ended quiz gives its place back")?;
    assert!(create(bp, &three).await?.is_none(), "and only one");
    expire(&codes[1], &[codes[2].clone(), fourth.clone()]).await?;
    create(bp, &three)
        .await?
        .context("an expired quiz gives its place back")?;

    // The quiz's own player cap (2), below the backplane's.
    for nickname in ["ann", "bob"] {
        assert!(matches!(
            bp.join(&fourth, nickname).await?,
            JoinResult::Joined(_)
        ));
    }
    assert_eq!(
        bp.join(&fourth, "cy").await?,
        JoinResult::Refused(JoinRefused::QuizFull)
    );
    Ok(())
}

#[tokio::test]
async fn memory_backplane_keeps_quotas() -> Result<()> {
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let config = MemoryConfig::default();
    let idle = config.idle_ttl_ms;
    let bp = MemoryBackplane::new(Arc::new(Recorder::default()), clock.clone(), config);
    quotas_hold(&bp, async |gone, keep| {
        clock.advance(idle - 1_000);
        for code in keep {
            // A host's call is activity.
            bp.command(code, HostCommand::Unlock).await?;
        }
        clock.advance(2_000);
        assert!(bp.expire().await?.contains(gone));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn redis_backplane_keeps_quotas_across_nodes() -> Result<()> {
    let server = RedisServer::start_ephemeral().await?;
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let config = RedisConfig {
        clock: Some(clock.clone()),
        ..RedisConfig::new(server.url())
    };
    let node = |c: RedisConfig| RedisBackplane::connect(c, Arc::new(Recorder::default()));
    let (a, b) = (node(config.clone()).await?, node(config).await?);

    quotas_hold(&a, async |code, _| {
        server.cli(&["DEL", &format!("{{q:{code}}}:meta")]).await?;
        // A code with no quiz is still counted while its creation might be
        // under way: 30 s.
        clock.advance(31_000);
        Ok(())
    })
    .await?;

    // A creation under way on another node: its code is reserved, its quiz
    // not stored yet. It holds its place for 30 s, then counts for nothing.
    let now = clock.now_ms().to_string();
    server
        .cli(&["ZADD", "qg:owner:slow", &now, "ABC234"])
        .await?;
    let two = limits("slow", 2, 10);
    assert!(create(&a, &two).await?.is_some());
    assert!(
        create(&b, &two).await?.is_none(),
        "the reservation under way holds the second place"
    );
    clock.advance(31_000);
    assert!(create(&b, &two).await?.is_some(), "until it is stale");

    // 24 creations at once from two nodes for 5 places: never more than 5.
    let five = limits("burst", 5, 10);
    let burst = join_all((0..24).map(|i| {
        let bp: &dyn Backplane = if i % 2 == 0 { &a } else { &b };
        create(bp, &five)
    }))
    .await;
    let created = burst
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .count();
    assert!(created <= 5, "{created} quizzes for 5 places");
    // Refused creations gave their places back: the quota fills to 5 exactly.
    let mut more = 0;
    while create(&a, &five).await?.is_some() {
        more += 1;
        assert!(more <= 5, "past the quota");
    }
    assert_eq!(created + more, 5, "{created} in the burst, {more} after");
    Ok(())
}
