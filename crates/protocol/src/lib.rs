//! Pure OAuth 2.0 and OpenID Connect protocol logic for Portcullis: parsing and validating
//! requests (authorization, token, end session, introspection, revocation, client registration), building
//! authorization responses and error bodies, PKCE, ID token and logout token claims, and the
//! discovery document.
//!
//! **Architecture Invariant:** this crate does no I/O. It depends on no other crate of ours, on
//! no async runtime, database or HTTP framework; it never reads the clock, the environment or a
//! random number generator. The caller resolves clients, verifies signatures and secrets, and
//! passes the results in, together with the current time and any random values. Every function
//! here is a plain input → output transformation, so the tests are tables without a server.
//!
//! Deliberately not here: signing and verifying JWTs (the JOSE crate), storing codes, tokens or
//! sessions (the domain), and rendering HTTP responses beyond the bodies the specs fix (the
//! server).

#![warn(missing_docs)]

pub mod authorize;
pub mod bearer;
pub mod claims;
pub mod client;
pub mod discovery;
pub mod end_session;
pub mod error;
pub mod front_channel;
pub mod introspection;
pub mod params;
pub mod pkce;
pub mod registration;
pub mod response;
pub mod revocation;
pub mod scope;
pub mod token;

pub use error::{ErrorCode, OAuthError};
