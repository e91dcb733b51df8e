//! Integration tests of the bus adapters against real components: each test
//! starts its own `redis-server` on a free port (see `redis_server`).

mod conformance;
mod redis_server;
mod redis_streams;
