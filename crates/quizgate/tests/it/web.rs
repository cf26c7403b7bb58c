//! The pages the node serves: types, caching, the security headers, the QR
//! code, and what other methods get.

use anyhow::Result;
use quizgate_testkit::http_request_with;

use crate::support::node;

/// The status, the head (lower-cased) and the body of a GET.
async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!("GET {path} HTTP/1.1\r\nHost: quizgate\r\n{extra}Connection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut s, &mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap_or("0").parse()?;
    Ok((status, head.to_ascii_lowercase(), body.to_owned()))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[tokio::test]
async fn the_pages_and_their_assets_are_served_with_a_strict_policy() -> Result<()> {
    let node = node(&[]).await?;
    let addr = node.ws_addr;
    for (path, kind, needle) in [
        ("/", "text/html", "Join a quiz"),
        ("/host", "text/html", "Host a quiz"),
        ("/assets/app.css", "text/css", ":root"),
        ("/assets/play.js", "text/javascript", "QuizgateClient"),
        ("/assets/host.js", "text/javascript", "createQuiz"),
        (
            "/assets/quizgate.js",
            "text/javascript",
            "export class QuizgateClient",
        ),
    ] {
        let (status, head, body) = get(addr, path, &[]).await?;
        assert_eq!(status, 200, "{path}");
        assert!(
            header(&head, "content-type").is_some_and(|t| t.starts_with(kind)),
            "{path}: {head}"
        );
        assert!(body.contains(needle), "{path}");
        let csp = header(&head, "content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
        // Revalidation: the same validator gets 304 and no body.
        let etag = header(&head, "etag").unwrap_or_default().to_owned();
        let (status, _, body) = get(addr, path, &[("If-None-Match", etag.as_str())]).await?;
        assert_eq!((status, body.as_str()), (304, ""), "{path}");
    }
    let (_, head, _) = get(addr, "/", &[]).await?;
    assert_eq!(
        header(&head, "cache-control"),
        Some("no-cache"),
        "pages are revalidated"
    );

    let (status, head, body) = get(
        addr,
        "/qr.svg?text=http%3A%2F%2F127.0.0.1%3A8080%2F%23K7MQ2X",
        &[],
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("image/svg+xml"));
    assert!(
        body.starts_with("<?xml") || body.starts_with("<svg"),
        "{}",
        &body[..body.len().min(60)]
    );
    for bad in ["/qr.svg", &format!("/qr.svg?text={}", "x".repeat(300))] {
        let (status, _, body) = get(addr, bad, &[]).await?;
        assert_eq!(status, 400, "{bad}");
        assert!(body.contains("?text="), "{body}");
    }
    let (status, body) = http_request_with(addr, "POST", "/host", &[], b"").await?;
    assert_eq!(status, 405, "{body}");
    let (status, _, _) = get(addr, "/assets/missing.js", &[]).await?;
    assert_eq!(status, 404);
    Ok(())
}
