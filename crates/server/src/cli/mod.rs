//! The admin subcommands of `portcullis` (`user`, `app`, `session`, `sign-out-everyone`,
//! `delivery`, `features`, `token`, `registration-token`, and `instance` on the system API):
//! thin clients of the admin HTTP API. They parse flags, send one request, and print the
//! answer for a human or, with `--json`, as the API returned it. They never open the store
//! themselves, so they work against any running server, local or remote, and go through the
//! same checks as any client.

mod apps;
mod client;
mod deliveries;
mod features;
mod instances;
mod output;
mod registration_tokens;
mod secret;
mod sessions;
mod sign_out;
mod tokens;
mod users;

use clap::{Args, Subcommand};

pub use client::ApiClient;

/// The environment variable holding the admin API's base URL.
pub const URL_VAR: &str = "PORTCULLIS_URL";
/// The environment variable holding the admin token.
pub const TOKEN_VAR: &str = "PORTCULLIS_ADMIN_TOKEN";
/// The environment variable holding the system token (for `portcullis instance`).
pub const SYSTEM_TOKEN_VAR: &str = "PORTCULLIS_SYSTEM_TOKEN";
/// The environment variable a password can be passed in (instead of `--password-stdin`).
pub const PASSWORD_VAR: &str = "PORTCULLIS_USER_PASSWORD";

/// Where the admin commands send their requests, and how they print answers.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(
        long,
        global = true,
        env = URL_VAR,
        hide_env_values = true,
        default_value = "http://127.0.0.1:8080",
        help_heading = "Admin API"
    )]
    pub url: String,
    /// An admin token.
    #[arg(
        long,
        global = true,
        env = TOKEN_VAR,
        hide_env_values = true,
        help_heading = "Admin API"
    )]
    pub token: Option<String>,
    /// Print the API's JSON answer instead of text.
    #[arg(long, global = true, help_heading = "Admin API")]
    pub json: bool,
}

/// The admin subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Manage OIDC applications.
    #[command(subcommand)]
    App(apps::AppCommand),
    /// See and end users' sessions.
    #[command(subcommand)]
    Session(sessions::SessionCommand),
    /// End every live session of the instance (incident response), following its progress.
    SignOutEveryone(sign_out::SignOutArgs),
    /// See and re-send back-channel logout deliveries (also `deliveries`).
    #[command(subcommand, visible_alias = "deliveries")]
    Delivery(deliveries::DeliveryCommand),
    /// See and set the instance's feature flags.
    #[command(subcommand)]
    Features(features::FeatureCommand),
    /// Manage admin tokens.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Manage instances (tenants) through the system API, with the system token.
    Instance(instances::InstanceArgs),
    /// Manage initial access tokens for Dynamic Client Registration (RFC 7591).
    #[command(subcommand)]
    RegistrationToken(registration_tokens::RegistrationTokenCommand),
}

/// Runs one admin subcommand against the server `connection` names.
pub async fn run(connection: &Connection, command: AdminCommand) -> anyhow::Result<()> {
    if let AdminCommand::Instance(args) = command {
        return instances::run(connection, args).await;
    }
    let client = ApiClient::new(connection)?;
    let json = connection.json;
    match command {
        AdminCommand::User(command) => users::run(&client, json, command).await,
        AdminCommand::App(command) => apps::run(&client, json, command).await,
        AdminCommand::Session(command) => sessions::run(&client, json, command).await,
        AdminCommand::SignOutEveryone(args) => sign_out::run(&client, json, args).await,
        AdminCommand::Delivery(command) => deliveries::run(&client, json, command).await,
        AdminCommand::Features(command) => features::run(&client, json, command).await,
        AdminCommand::Token(command) => tokens::run(&client, json, command).await,
        AdminCommand::Instance(_) => unreachable!("answered above, with the system token"),
        AdminCommand::RegistrationToken(command) => {
            registration_tokens::run(&client, json, command).await
        }
    }
}
