//! `proto decode tcpcl`: contact headers and TCPCLv4 messages.

use super::{DecodeFailure, Frame};

/// Decodes a TCPCL byte stream.
pub(crate) fn decode_stream(_input: &[u8]) -> (Vec<Frame>, Option<DecodeFailure>) {
    (
        vec![],
        Some(DecodeFailure {
            offset: 0,
            message: "TCPCL decoding is not built yet".into(),
        }),
    )
}
