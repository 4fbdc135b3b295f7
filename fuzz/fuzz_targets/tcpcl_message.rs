//! Placeholder: fuzz the TCPCL contact header / message decoders once `proto_core::tcpcl`
//! exposes them.
//!
//! Not yet a `[[bin]]` in fuzz/Cargo.toml. To enable, replace the body with calls to the
//! contact-header and message decoders (and a decode / encode / decode round trip), then
//! add the `[[bin]]` entry.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
