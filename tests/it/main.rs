//! One integration binary: the real gateway on 127.0.0.1:0 against real
//! upstreams, driven by real clients.

mod browser;
mod cors;
mod support;
