//! Redis: a per-core client on the RESP codec of redis-protocol.
