//! One module per command; `main` dispatches here.

pub mod token;
