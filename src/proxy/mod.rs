//! The streaming proxy: upstream clients (`client`), body wrappers
//! (`body`), header rules (`headers`) and sending (`forward`).

pub mod body;
pub mod client;
pub mod forward;
pub mod headers;
