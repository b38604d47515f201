//! Client-side tools of the `timberline` command, apart from the server's data path: loading
//! log files into a running server, following its live tail, and benchmarking one. They reach the server over HTTP and
//! pgwire as any client does.

pub mod bench;
pub mod load;
mod shipper_bodies;
pub mod tail;
mod tail_bench;
