//! Blocking `std::net` runtime for proto: drives the `proto-core` state machines over
//! sockets, one thread per socket, with crossbeam channels back to the caller.
