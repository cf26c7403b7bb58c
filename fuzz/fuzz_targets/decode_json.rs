//! Any bytes as a JSON client frame: never a panic, and a frame that decodes
//! encodes back to one that decodes to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quizgate_protocol::{ClientFrame, Encoding, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode(Encoding::Json, data) {
        let again = serde_json::to_vec(&frame).expect("a client frame encodes");
        let back: ClientFrame = decode(Encoding::Json, &again).expect("and decodes again");
        assert_eq!(back, frame);
    }
});
