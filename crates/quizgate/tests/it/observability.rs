//! Metrics, alerts and the dashboard against a live node: the key series
//! move as a quiz is played, `promtool` finds the exposition and the rules
//! clean and the rules' unit tests pass, and the dashboard and the alerts
//! name only series a node exports.

use std::collections::BTreeSet;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use quizgate_protocol::{Encoding, ServerFrame};
use quizgate_testkit::{create_quiz, sample_quiz};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::support::{Backend, answer, command, host, node_on, player, reply, sample, scrape};

const PROMETHEUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/prometheus");
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/grafana/quizgate.json"
);

/// Runs promtool with `args`, feeding `stdin`; fails with its output.
async fn promtool(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut child = tokio::process::Command::new("promtool")
        .args(args)
        .current_dir(PROMETHEUS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("promtool is missing: make deps installs it")?;
    let mut input = child.stdin.take().context("stdin")?;
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await?;
    }
    drop(input);
    let out = tokio::time::timeout(quizgate_testkit::WAIT, child.wait_with_output()).await??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("promtool {args:?} failed:\n{text}");
    }
    Ok(text)
}

#[tokio::test]
async fn a_live_node_s_metrics_follow_a_quiz_and_pass_promtool() -> Result<()> {
    let node = node_on(Backend::Redis, &[]).await?;
    let (addr, admin) = (node.ws_addr, node.admin_addr);
    let before = scrape(admin).await?;
    let (code, token) = create_quiz(addr, &sample_quiz(1, 60_000)).await?;
    let (mut host, _) = host(addr, &code, &token).await?;
    let mut players = Vec::new();
    for i in 0..3 {
        players.push(
            player(addr, Encoding::Json, &code, &format!("p{i}"))
                .await?
                .0,
        );
    }
    let during = scrape(admin).await?;
    assert_eq!(sample(&during, "quizgate_players"), 3.0);
    assert_eq!(sample(&during, "quizgate_ready"), 1.0);
    assert_eq!(sample(&during, "quizgate_backplane_up"), 1.0);
    assert_eq!(sample(&during, "quizgate_draining"), 0.0);
    let version = format!(
        "quizgate_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&during, &version), 1.0);
    command(&mut host, "start").await?;
    for p in &mut players {
        answer(p, 0, 1).await?;
    }
    for p in &mut players {
        p.recv_until("the reveal", |f| matches!(f, ServerFrame::Reveal { .. }))
            .await?;
    }
    let after = scrape(admin).await?;
    let moved = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(moved("quizgate_connections_opened_total"), 4.0);
    assert_eq!(moved(r#"quizgate_frames_in_total{type="answer"}"#), 3.0);
    assert_eq!(moved(r#"quizgate_answers_total{outcome="accepted"}"#), 3.0);
    assert_eq!(
        moved(r#"quizgate_backplane_call_seconds_count{call="join"}"#),
        3.0
    );
    assert_eq!(
        moved(r#"quizgate_backplane_call_seconds_count{call="create"}"#),
        1.0
    );
    // The host's seat read the definition; the three players found it here.
    assert_eq!(
        moved(r#"quizgate_definition_reads_total{result="fetched"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"quizgate_definition_reads_total{result="cached"}"#),
        3.0
    );
    // The question, its reveal and the leaderboard, each fanned out once to
    // the 4 members: counted once the fan-out is past its writes, which may be
    // just after the players read them.
    quizgate_testkit::wait_until("the fan-out is counted", quizgate_testkit::WAIT, || async {
        let now = scrape(admin).await?;
        let moved = |name: &str| sample(&now, name) - sample(&before, name);
        anyhow::ensure!(
            moved("quizgate_event_delivery_seconds_count") >= 3.0,
            "events"
        );
        anyhow::ensure!(moved("quizgate_frames_out_total") >= 3.0 * 4.0, "frames");
        // The events came through Redis Pub/Sub; every frame is bytes out.
        anyhow::ensure!(moved("quizgate_pubsub_messages_total") >= 3.0, "pub/sub");
        anyhow::ensure!(
            moved("quizgate_bytes_out_total") >= 3.0 * 4.0 * 20.0,
            "bytes"
        );
        Ok(())
    })
    .await?;
    drop(players);
    host.send(json!({"t": "ping"})).await?;
    assert!(matches!(reply(&mut host).await?, ServerFrame::Pong { .. }));
    quizgate_testkit::wait_until("the players are gone", quizgate_testkit::WAIT, || async {
        let now = scrape(admin).await?;
        anyhow::ensure!(
            sample(&now, "quizgate_players") == 0.0,
            "players still seated"
        );
        Ok(())
    })
    .await?;
    promtool(&["check", "metrics"], Some(&scrape(admin).await?)).await?;
    Ok(())
}

#[tokio::test]
async fn promtool_checks_the_rules_and_passes_their_tests() -> Result<()> {
    let out = promtool(&["check", "rules", "alerts.yml"], None).await?;
    assert!(out.contains("SUCCESS: 8 rules found"), "{out}");
    let out = promtool(&["test", "rules", "alerts_test.yml"], None).await?;
    assert!(out.contains("SUCCESS"), "{out}");
    promtool(&["check", "config", "prometheus.yml"], None).await?;
    Ok(())
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_name_only_series_a_node_exports() -> Result<()> {
    let node = node_on(Backend::Embedded, &[]).await?;
    // Series with labels appear once used: make an error and a refusal.
    let _ = create_quiz(node.ws_addr, &sample_quiz(1, 10_000)).await?;
    let exported: BTreeSet<String> = scrape(node.admin_addr)
        .await?
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let mut named = BTreeSet::new();
    for file in [DASHBOARD.to_owned(), format!("{PROMETHEUS}/alerts.yml")] {
        let text = std::fs::read_to_string(&file)?;
        let mut rest = text.as_str();
        while let Some(at) = rest.find("quizgate_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            named.insert(name);
        }
    }
    let unknown: Vec<&String> = named
        .iter()
        .filter(|n| {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n);
            !exported.contains(base) && !exported.contains(n.as_str())
        })
        .collect();
    assert!(named.len() >= 15, "{named:?}");
    assert!(unknown.is_empty(), "named but not exported: {unknown:?}");
    Ok(())
}
