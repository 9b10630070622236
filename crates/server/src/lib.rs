//! The Portcullis server: configuration, the HTTP surface and startup. The only crate that
//! reads the environment, the wall clock and sockets.

pub mod allocator;
pub mod cli;
pub mod config;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::RunningServer;
