//! The streaming proxy: upstream clients (`client`), body wrappers
//! (`body`), header rules (`headers`), the upstream request (`upstream`),
//! sending (`forward`) and upgraded connections (`tunnel`).

pub mod body;
pub mod client;
pub mod forward;
pub mod headers;
pub mod tunnel;
pub mod upstream;
