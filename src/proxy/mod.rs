//! The streaming proxy: upstream clients (`client`), body wrappers
//! (`body`), header rules (`headers`), the upstream request (`upstream`),
//! sending (`forward`) and upgraded connections (`tunnel`).

pub(crate) mod body;
pub(crate) mod client;
pub(crate) mod forward;
pub mod headers;
pub(crate) mod tunnel;
pub(crate) mod upstream;
