//! The streaming proxy: upstream clients (`client`: per worker, the
//! HTTP/1.1 `pool` and hyper-util's client, both connecting through
//! `connect`), body wrappers (`body`), header rules (`headers`), the
//! upstream request (`upstream`), sending (`forward`) and upgraded
//! connections (`tunnel`).

pub(crate) mod body;
pub(crate) mod client;
pub(crate) mod connect;
pub(crate) mod forward;
pub mod headers;
pub(crate) mod pool;
pub(crate) mod tunnel;
pub(crate) mod upstream;
