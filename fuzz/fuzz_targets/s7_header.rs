//! Fuzzes the S7comm header parser on arbitrary DT payloads: it never panics, and
//! what it accepts is consistent with the bytes (blocks inside the payload, lengths as
//! announced).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::s7::{classify, Payload};

fuzz_target!(|data: &[u8]| {
    match classify(data) {
        Ok(Payload::S7comm(pdu)) => {
            let h = pdu.header;
            assert_eq!(data[0], 0x32);
            assert_eq!(pdu.params.len(), usize::from(h.param_len));
            assert_eq!(pdu.data.len(), usize::from(h.data_len));
            assert_eq!(
                h.len() + pdu.params.len() + pdu.data.len() + pdu.trailing,
                data.len()
            );
            let _ = (pdu.function(), pdu.setup_communication(), pdu.item_count());
            let _ = pdu.userdata();
        }
        Ok(Payload::S7commPlus { .. }) => assert_eq!(data[0], 0x72),
        Ok(Payload::Other) => assert!(data.first().is_none_or(|b| *b != 0x32 && *b != 0x72)),
        Err(e) => {
            assert_eq!(data[0], 0x32);
            assert!(e.offset() <= data.len().max(12));
        }
    }
});
