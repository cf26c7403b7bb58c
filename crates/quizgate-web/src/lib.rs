//! The pages a node serves itself: a player page (`/`), a host page
//! (`/host`), their scripts and style, and the reference JavaScript client
//! (`/assets/quizgate.js`), all embedded in the binary from `web/`; and the
//! QR code a host shows so that phones open the player page with the code.
//!
//! Architecture invariant: this crate knows nothing of HTTP servers; the
//! gateway asks it for bytes and headers.

use std::sync::LazyLock;

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
    /// `Cache-Control`: pages are revalidated every time (they name the
    /// assets); assets may be kept a few minutes.
    pub cache_control: &'static str,
    /// A strong validator of `body` (for `If-None-Match`).
    pub etag: &'static str,
}

/// The policy every page and asset is served with: scripts, styles and
/// images from the node only, no inline code, no framing, connections
/// (WebSocket, the quiz API) to the node only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const PAGE: &str = "no-cache";
const ASSET: &str = "public, max-age=300";

struct File {
    path: &'static str,
    body: &'static [u8],
    content_type: &'static str,
    cache_control: &'static str,
}

const FILES: &[File] = &[
    File {
        path: "/",
        body: include_bytes!("../../../web/pages/play.html"),
        content_type: "text/html; charset=utf-8",
        cache_control: PAGE,
    },
    File {
        path: "/host",
        body: include_bytes!("../../../web/pages/host.html"),
        content_type: "text/html; charset=utf-8",
        cache_control: PAGE,
    },
    File {
        path: "/assets/app.css",
        body: include_bytes!("../../../web/pages/app.css"),
        content_type: "text/css; charset=utf-8",
        cache_control: ASSET,
    },
    File {
        path: "/assets/play.js",
        body: include_bytes!("../../../web/pages/play.js"),
        content_type: "text/javascript; charset=utf-8",
        cache_control: ASSET,
    },
    File {
        path: "/assets/host.js",
        body: include_bytes!("../../../web/pages/host.js"),
        content_type: "text/javascript; charset=utf-8",
        cache_control: ASSET,
    },
    File {
        path: "/assets/quizgate.js",
        body: include_bytes!("../../../web/client/quizgate.js"),
        content_type: "text/javascript; charset=utf-8",
        cache_control: ASSET,
    },
];

static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|f| format!("\"{:016x}\"", fnv1a(f.body)))
        .collect()
});

/// The embedded file at `path`, if there is one.
pub fn asset(path: &str) -> Option<Asset> {
    let i = FILES.iter().position(|f| f.path == path)?;
    let f = &FILES[i];
    Some(Asset {
        body: f.body,
        content_type: f.content_type,
        cache_control: f.cache_control,
        etag: ETAGS[i].as_str(),
    })
}

/// The longest text a QR code is made for: a join URL fits many times over.
pub const MAX_QR_TEXT: usize = 256;

/// An SVG QR code of `text`; `None` if it is longer than [`MAX_QR_TEXT`].
pub fn qr_svg(text: &str) -> Option<String> {
    if text.len() > MAX_QR_TEXT {
        return None;
    }
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

/// FNV-1a: a validator, not a security measure.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_there_with_its_type_and_a_validator() {
        for path in [
            "/",
            "/host",
            "/assets/app.css",
            "/assets/play.js",
            "/assets/host.js",
            "/assets/quizgate.js",
        ] {
            let a = asset(path).expect(path);
            assert!(!a.body.is_empty(), "{path}");
            assert!(a.etag.starts_with('"') && a.etag.len() == 18, "{path}");
        }
        assert!(asset("/assets/../Cargo.toml").is_none());
        assert_eq!(asset("/").map(|a| a.cache_control), Some("no-cache"));
    }

    #[test]
    fn qr_codes_are_svg_and_bounded() {
        let svg = qr_svg("http://127.0.0.1:8080/#K7MQ2X").expect("fits");
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        assert!(qr_svg(&"x".repeat(MAX_QR_TEXT + 1)).is_none());
    }
}
