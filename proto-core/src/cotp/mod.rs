//! X.224 / ISO 8073 connection-oriented transport (COTP).
