//! Portcullis' domain: commands that decide events, and read models folded from them.
//!
//! Deciding (state + command → events, may fail) is separate from applying (event → state,
//! cannot fail), so aggregates are tested given/when/then without a database. Read models are
//! projections over the event store; commands wait for them to show their own writes.
//! Nothing here speaks HTTP or reads the clock or the environment: the server passes a
//! [`Clock`] and configuration in.

pub mod admin_token;
pub mod aggregate;
pub mod application;
mod cache;
pub mod clock;
pub mod error;
pub mod features;
pub mod grant;
pub mod instance;
pub mod instance_sign_out;
pub mod keys;
mod minutes;
pub mod observer;
pub mod registration_token;
mod service;
pub mod session;
pub mod session_logout;
pub mod system;
pub mod user;

pub use admin_token::{AdminPrincipal, AdminTokenView, IssuedAdminToken};
pub use clock::{Clock, FixedClock};
pub use error::DomainError;
pub use features::{Feature, FeatureState, SystemFeatures};
pub use grant::{CODE_LIFETIME_SECS, ClientToken, CodeRequest, IssuedTokens};
pub use instance::InstanceView;
pub use instance::{CreatedInstance, RemovalProgress, SetupOutcome, SetupRequest};
pub use observer::Observer;
pub use service::{Domain, DomainOptions};
pub use session::{SessionView, TerminationReason};
pub use user::NewUser;
pub use user::{Profile, UserState, UserView};
