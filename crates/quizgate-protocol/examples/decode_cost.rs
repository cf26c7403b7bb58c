//! What the worst client frames we can build cost to decode, in both encodings,
//! each at most `QUIZGATE_MAX_MESSAGE_BYTES` (4096) long: the decoder the node
//! uses (`quizgate_protocol::decode`) against serde decoding straight into the
//! internally tagged `ClientFrame`, which is what the node did before issue 9.
//!
//!     cargo run --release -p quizgate-protocol --example decode_cost
//!
//! Prints, per frame, the median of 7 rounds of µs per decode.

use std::hint::black_box;
use std::time::Instant;

use quizgate_protocol::{ClientFrame, Encoding, decode};

const LIMIT: usize = 4096;

fn main() {
    let frames = frames();
    println!("| frame | bytes | decode (µs) | serde into ClientFrame (µs) |");
    println!("|---|---|---|---|");
    for (name, encoding, bytes) in &frames {
        assert!(bytes.len() <= LIMIT, "{name}: {} bytes", bytes.len());
        let ours = median_us(|| {
            let _ = black_box(decode(*encoding, black_box(bytes)));
        });
        let serde = median_us(|| match encoding {
            Encoding::Json => {
                let _ = black_box(serde_json::from_slice::<ClientFrame>(black_box(bytes)));
            }
            Encoding::MsgPack => {
                let _ = black_box(rmp_serde::from_slice::<ClientFrame>(black_box(bytes)));
            }
        });
        println!("| {name} | {} | {ours:.2} | {serde:.2} |", bytes.len());
    }
}

/// Median over 7 rounds of the mean µs per call (each round at least 50 ms).
fn median_us(mut f: impl FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed().as_millis() < 50 || n < 3 {
                f();
                n += 1;
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[3]
}

fn frames() -> Vec<(&'static str, Encoding, Vec<u8>)> {
    let mut out = Vec::new();
    // An ordinary frame, for scale.
    let answer = serde_json::json!({"t": "answer", "question": 3, "choice": 1, "rid": 42});
    out.push((
        "ordinary answer, JSON",
        Encoding::Json,
        answer.to_string().into_bytes(),
    ));
    out.push((
        "ordinary answer, MessagePack",
        Encoding::MsgPack,
        rmp_serde::to_vec_named(&answer).expect("encodes"),
    ));

    // MessagePack: arrays and maps that declare 2^32 - 1 elements and hold none.
    let mut huge = vec![0x82, 0xa1, b't', 0xa4, b'j', b'o', b'i', b'n', 0xa1, b'x'];
    huge.extend(std::iter::repeat_n([0xdd, 0xff, 0xff, 0xff, 0xff], 800).flatten());
    huge.truncate(LIMIT);
    out.push((
        "nested array32 headers declaring 2^32-1 each",
        Encoding::MsgPack,
        huge,
    ));
    let mut maps = vec![0x82, 0xa1, b't', 0xa4, b'j', b'o', b'i', b'n', 0xa1, b'x'];
    maps.extend(std::iter::repeat_n([0xdf, 0xff, 0xff, 0xff, 0xff], 800).flatten());
    maps.truncate(LIMIT);
    out.push((
        "nested map32 headers declaring 2^32-1 each",
        Encoding::MsgPack,
        maps,
    ));
    // MessagePack: a map of ~2,000 one-byte keys and values.
    let mut wide = vec![0xde, 0x07, 0xd0];
    for i in 0..2000u32 {
        wide.push(0xa1);
        wide.push(b'a' + (i % 26) as u8);
        wide.push((i % 128) as u8);
    }
    wide.truncate(LIMIT);
    out.push(("map16 of 2,000 tiny fields", Encoding::MsgPack, wide));
    // MessagePack: 4,000 levels of one-element arrays.
    let mut deep = vec![0x82, 0xa1, b't', 0xa4, b'j', b'o', b'i', b'n', 0xa1, b'x'];
    deep.extend(std::iter::repeat_n(0x91, LIMIT - deep.len() - 1));
    deep.push(0xc0);
    out.push(("4,000 nested fixarrays", Encoding::MsgPack, deep));

    // JSON: the same shapes.
    let depth = (LIMIT - 40) / 2;
    let nested = format!(
        r#"{{"t":"join","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    out.push((
        "2,000 nested arrays, JSON",
        Encoding::Json,
        nested.into_bytes(),
    ));
    let fields: Vec<String> = (0..380).map(|i| format!(r#""k{i}":{i}"#)).collect();
    let wide_json = format!(r#"{{"t":"join",{}}}"#, fields.join(","));
    out.push((
        "object of 380 fields, JSON",
        Encoding::Json,
        wide_json.into_bytes(),
    ));
    out
}
