//! Replays the fuzzers' corpus (`fuzz/corpus/decode_*`) through the decoder on
//! stable Rust, in every `make test`: each input gets a frame or an error, and
//! a frame encodes back to one that decodes to the same, as the fuzz targets
//! check. Inputs that once made a target fail stay in the corpus for good.

use std::path::Path;

use quizgate_protocol::{ClientFrame, Encoding, decode};

fn replay(dir: &str, encoding: Encoding) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(dir);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus is in the repository") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("readable");
        if let Ok(frame) = decode(encoding, &bytes) {
            let again = match encoding {
                Encoding::Json => serde_json::to_vec(&frame).expect("encodes"),
                Encoding::MsgPack => rmp_serde::to_vec_named(&frame).expect("encodes"),
            };
            let back: ClientFrame = decode(encoding, &again).expect("decodes again");
            assert_eq!(back, frame);
        }
        n += 1;
    }
    n
}

#[test]
fn the_json_corpus_decodes_or_is_refused_and_round_trips() {
    assert!(replay("decode_json", Encoding::Json) >= 12);
}

#[test]
fn the_msgpack_corpus_decodes_or_is_refused_and_round_trips() {
    assert!(replay("decode_msgpack", Encoding::MsgPack) >= 12);
}
