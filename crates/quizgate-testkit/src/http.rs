use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request on a fresh connection, with a JSON content type and
/// the kit's API key; returns the status and body.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, String)> {
    let bearer = format!("Bearer {}", crate::API_KEY);
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", bearer.as_str()),
    ];
    http_request_with(addr, method, path, &headers, body).await
}

/// One HTTP/1.1 request with exactly these headers (besides `Host`,
/// `Content-Length` and `Connection: close`); returns the status and body.
pub async fn http_request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String)> {
    let stream = TcpStream::connect(addr).await?;
    request_over(stream, addr, method, path, headers, body).await
}

/// The same over an open stream (TLS, say).
pub async fn request_over(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String)> {
    tokio::time::timeout(crate::WAIT, async {
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status: u16 = text.split_whitespace().nth(1).context("status line")?.parse()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Ok((status, body))
    })
    .await
    .context("http request timed out")?
}

/// Creates a quiz; returns its join code and host token.
pub async fn create_quiz(addr: SocketAddr, def: &serde_json::Value) -> Result<(String, String)> {
    let (status, body) =
        http_request(addr, "POST", "/v1/quizzes", def.to_string().as_bytes()).await?;
    if status != 201 {
        bail!("create quiz: {status} {body}");
    }
    let v: serde_json::Value = serde_json::from_str(&body)?;
    Ok((
        v["code"].as_str().context("code")?.to_owned(),
        v["host_token"].as_str().context("host_token")?.to_owned(),
    ))
}

/// A quiz of `n` questions; question i's right choice is `i % 3`.
pub fn sample_quiz(n: usize, time_limit_ms: u64) -> serde_json::Value {
    let questions: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "text": format!("Question {i}?"),
                "choices": ["red", "green", "blue"],
                "correct": i % 3,
                "time_limit_ms": time_limit_ms,
                "points": 1000,
            })
        })
        .collect();
    serde_json::json!({"title": "Sample", "questions": questions})
}
