//! Any bytes as a MessagePack client frame: never a panic, and a frame that
//! decodes encodes back to one that decodes to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quizgate_protocol::{ClientFrame, Encoding, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode(Encoding::MsgPack, data) {
        let again = rmp_serde::to_vec_named(&frame).expect("a client frame encodes");
        let back: ClientFrame = decode(Encoding::MsgPack, &again).expect("and decodes again");
        assert_eq!(back, frame);
    }
});
