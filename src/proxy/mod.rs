//! The streaming proxy: upstream clients (`client`: per worker, the
//! HTTP/1.1 `pool` and hyper-util's client, both connecting through
//! `connect`), body wrappers (`body`), header rules (`headers`), the
//! upstream request (`upstream`), sending (`forward`) and upgraded
//! connections (`tunnel`).

pub mod body;
pub mod client;
pub mod connect;
pub mod forward;
pub mod headers;
pub mod pool;
pub mod tunnel;
pub mod upstream;
