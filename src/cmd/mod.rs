//! One file per command.

pub mod check_config;
pub mod generate;
pub mod schema;
pub mod serve;
pub mod token;
