//! The PROXY protocol (v1 text or v2 binary, as HAProxy's `send-proxy` and
//! `send-proxy-v2` write it): behind an L4 load balancer every connection
//! comes from the balancer, and the header it sends first names the client.
//! Parsing is `ppp`'s; this reads exactly the header's bytes off the socket,
//! so that what follows (the HTTP request) is untouched.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use ppp::{HeaderResult, PartialResult, v1, v2};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Longest header read (v1 is at most 107 bytes; v2 with a few TLVs fits).
const MAX_HEADER: usize = 536;

/// Reads the header and returns the client's address: the source it names,
/// or `peer` for a header that names none (`LOCAL`, `UNKNOWN`: the
/// balancer's own checks). The caller bounds the time this may take.
pub(crate) async fn read_header(stream: &mut TcpStream, peer: IpAddr) -> io::Result<IpAddr> {
    let mut buf = [0u8; MAX_HEADER];
    // Bounded: the header arrives in one segment in practice; this only
    // covers a peer that trickles it.
    for _ in 0..200 {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let parsed = HeaderResult::parse(&buf[..n]);
        if parsed.is_incomplete() && n < MAX_HEADER {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let (len, source) = match parsed {
            HeaderResult::V1(Ok(h)) => (h.header.len(), v1_source(&h.addresses)),
            HeaderResult::V2(Ok(h)) => (h.header.len(), v2_source(&h.addresses)),
            HeaderResult::V1(Err(e)) => return Err(invalid(e)),
            HeaderResult::V2(Err(e)) => return Err(invalid(e)),
        };
        let mut header = vec![0u8; len];
        stream.read_exact(&mut header).await?;
        return Ok(source.unwrap_or(peer));
    }
    Err(io::ErrorKind::TimedOut.into())
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a PROXY protocol header: {e}"),
    )
}

fn v1_source(addresses: &v1::Addresses) -> Option<IpAddr> {
    match addresses {
        v1::Addresses::Tcp4(a) => Some(a.source_address.into()),
        v1::Addresses::Tcp6(a) => Some(a.source_address.into()),
        v1::Addresses::Unknown => None,
    }
}

fn v2_source(addresses: &v2::Addresses) -> Option<IpAddr> {
    match addresses {
        v2::Addresses::IPv4(a) => Some(a.source_address.into()),
        v2::Addresses::IPv6(a) => Some(a.source_address.into()),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}
