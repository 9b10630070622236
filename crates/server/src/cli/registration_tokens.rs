//! `portcullis registration-token …`: initial access tokens for Dynamic Client Registration.

use clap::Subcommand;
use serde_json::json;

use super::client::ApiClient;
use super::output;
use crate::http::admin::registration_tokens::{CreatedRegistrationToken, RegistrationTokenList};

/// Initial access token subcommands.
#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCommand {
    /// Issue an initial access token; it is printed once.
    Create {
        /// What (or whom) the token is for.
        #[arg(long)]
        description: String,
        /// How long it works, in seconds (at most 90 days).
        #[arg(long, default_value_t = 86_400)]
        expires_in_secs: u64,
        /// Good for one registration only.
        #[arg(long)]
        one_time: bool,
    },
    /// List initial access tokens (never the tokens themselves).
    List,
    /// Revoke an initial access token (clients it registered stay).
    Revoke {
        /// The token's id (from `registration-token list`).
        token_id: String,
    },
}

/// Runs an initial access token subcommand.
pub async fn run(
    client: &ApiClient,
    json: bool,
    command: RegistrationTokenCommand,
) -> anyhow::Result<()> {
    match command {
        RegistrationTokenCommand::Create {
            description,
            expires_in_secs,
            one_time,
        } => {
            let body = json!({
                "description": description,
                "expires_in_secs": expires_in_secs,
                "one_time": one_time,
            });
            let answer = client.post(&["registration-tokens"], Some(&body)).await?;
            if json {
                output::json(&answer.body);
            } else {
                let created: CreatedRegistrationToken = answer.parse()?;
                let entry = created.registration_token;
                output::fields(&[
                    ("token_id", entry.token_id),
                    ("description", entry.description),
                    ("expires_at", entry.expires_at),
                    ("one_time", entry.one_time.to_string()),
                    ("token", created.token),
                ]);
                println!("The token is shown only now; hand it to the client's developer.");
            }
        }
        RegistrationTokenCommand::List => {
            let answer = client.get(&["registration-tokens"], &[]).await?;
            if json {
                output::json(&answer.body);
            } else {
                let list: RegistrationTokenList = answer.parse()?;
                let rows: Vec<Vec<String>> = list
                    .registration_tokens
                    .iter()
                    .map(|token| {
                        vec![
                            token.token_id.clone(),
                            if token.revoked { "revoked" } else { "live" }.into(),
                            token.expires_at.clone(),
                            if token.one_time {
                                "one-time"
                            } else {
                                "reusable"
                            }
                            .into(),
                            token.used_by.len().to_string(),
                            token.description.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "TOKEN_ID",
                        "STATE",
                        "EXPIRES_AT",
                        "USE",
                        "CLIENTS",
                        "DESCRIPTION",
                    ],
                    &rows,
                );
            }
        }
        RegistrationTokenCommand::Revoke { token_id } => {
            let answer = client.delete(&["registration-tokens", &token_id]).await?;
            if json {
                output::json(&answer.body);
            } else {
                println!("Revoked initial access token {token_id}.");
            }
        }
    }
    Ok(())
}
