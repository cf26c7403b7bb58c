//! What a connection's bytes are, as they are read: the WebSocket handshake
//! request (its end found, so that frames start on a boundary), then frames,
//! whose headers are walked to count continuation frames against the frame
//! rate. tungstenite assembles fragments before the node sees a message, so
//! without this an endless run of empty continuation frames would never
//! reach the frame rate, while costing a read each.

use std::io;

use crate::connection::{Limits, Over};

/// Where a connection's byte stream stands.
#[derive(Debug, Default)]
pub(crate) enum Reading {
    /// Not looked at: HTTP, the sniff, an echo of nothing.
    #[default]
    Raw,
    /// A WebSocket handshake request; `line` counts the bytes of the current
    /// line (a `\r` not counted): an empty line ends the request, whether
    /// lines end in `\r\n` or in a bare `\n`.
    Handshake { line: u32, frames_per_second: u32 },
    /// WebSocket frames, from a frame boundary.
    Frames(FrameWalk),
}

/// What the reader should do with bytes just read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Hand them all on.
    All,
    /// Hand on the first `n`: the handshake request ends there, and the rest
    /// are frames, to be read again once the handshake is done.
    UpTo(usize),
}

impl Reading {
    /// Looks at bytes just read; an error if they hold more continuation
    /// frames than the frame rate allows.
    pub(crate) fn see(&mut self, bytes: &[u8]) -> io::Result<Seen> {
        match self {
            Self::Raw => Ok(Seen::All),
            Self::Handshake {
                line,
                frames_per_second,
            } => {
                for (i, &b) in bytes.iter().enumerate() {
                    let ended = match b {
                        b'\n' if *line == 0 => true,
                        b'\n' => {
                            *line = 0;
                            false
                        }
                        b'\r' => false,
                        _ => {
                            *line = line.saturating_add(1);
                            false
                        }
                    };
                    if ended {
                        *self = Self::Frames(FrameWalk::new(*frames_per_second));
                        return Ok(Seen::UpTo(i + 1));
                    }
                }
                Ok(Seen::All)
            }
            Self::Frames(walk) => walk.walk(bytes).map(|()| Seen::All),
        }
    }
}

/// Walks frame headers and skips payloads: the cost is per frame, not per byte.
#[derive(Debug)]
pub(crate) struct FrameWalk {
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    limits: Limits,
}

impl FrameWalk {
    fn new(frames_per_second: u32) -> Self {
        Self {
            header: [0; 14],
            have: 0,
            skip: 0,
            limits: Limits::new(frames_per_second),
        }
    }

    /// The header's length, once its first two bytes are in.
    fn header_len(&self) -> usize {
        let ext = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    fn payload_len(&self) -> u64 {
        match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        }
    }

    fn walk(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64);
                self.skip -= n;
                bytes = &bytes[n as usize..];
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have < 2 || self.have < self.header_len() {
                continue;
            }
            // A continuation frame (opcode 0): counted here; the frames
            // that start a message are counted when it arrives.
            if self.header[0] & 0x0f == 0 && self.limits.over_rate() == Some(Over::Closed) {
                return Err(io::Error::other(ContinuationFlood));
            }
            self.skip = self.payload_len();
            self.have = 0;
        }
        Ok(())
    }
}

/// The read error of a connection that sent continuation frames far over
/// the frame rate: it is closed with 1008, as for any frame.
#[derive(Debug, thiserror::Error)]
#[error("continuation frames over the frame rate")]
pub(crate) struct ContinuationFlood;

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend_from_slice(payload);
        f
    }

    #[tokio::test(start_paused = true)]
    async fn the_request_ends_at_its_blank_line_and_frames_are_walked_from_there() {
        let mut r = Reading::Handshake {
            line: 1,
            frames_per_second: 10,
        };
        let request = b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut bytes = request[..20].to_vec();
        assert_eq!(r.see(&bytes).expect("fine"), Seen::All);
        bytes = request[20..].to_vec();
        // A first frame whose payload looks like anything at all.
        bytes.extend(frame(1, false, &[0x80, 0x7f, 0xff, 0xff]));
        assert_eq!(r.see(&bytes).expect("fine"), Seen::UpTo(request.len() - 20));
        let Reading::Frames(_) = r else {
            panic!("frames from the blank line on");
        };
        // Big payloads are skipped, split anywhere; only continuations count.
        let mut stream = frame(2, false, &vec![0u8; 70_000]);
        for _ in 0..20 {
            stream.extend(frame(0, false, &[]));
        }
        for chunk in stream.chunks(7) {
            r.see(chunk).expect("within the burst");
        }
        // Then 50 more over the rate are forgiven, the 51st is not.
        let flood: Vec<u8> = (0..51).flat_map(|_| frame(0, false, &[])).collect();
        let err = r.see(&flood).expect_err("a flood");
        assert!(err.get_ref().is_some_and(|e| e.is::<ContinuationFlood>()));
    }

    #[test]
    fn a_request_with_bare_newlines_ends_at_its_empty_line_too() {
        let mut r = Reading::Handshake {
            line: 1,
            frames_per_second: 10,
        };
        let request = b"GET /ws HTTP/1.1\nHost: x\n\n\x81\x80";
        assert_eq!(r.see(request).expect("fine"), Seen::UpTo(request.len() - 2));
    }

    #[tokio::test(start_paused = true)]
    async fn data_and_control_frames_are_left_to_the_message_count() {
        let mut r = Reading::Frames(FrameWalk::new(1));
        let many: Vec<u8> = (0..500)
            .flat_map(|i| frame(if i % 2 == 0 { 1 } else { 9 }, true, b"hi"))
            .collect();
        r.see(&many).expect("not counted here");
    }
}
