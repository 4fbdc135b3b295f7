//! Placeholder: fuzz the COTP TPDU decoder once `proto_core::cotp` exposes it.
//!
//! Not yet a `[[bin]]` in fuzz/Cargo.toml. To enable, replace the body with e.g.
//! `let _ = proto_core::cotp::Tpdu::decode(data);` (decode, re-encode what decoded,
//! decode again and compare), then add the `[[bin]]` entry.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
