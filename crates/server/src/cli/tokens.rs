//! `portcullis token …`

use clap::Subcommand;
use serde_json::json;

use super::client::ApiClient;
use super::output;
use crate::http::admin::admin_tokens::{AdminTokenList, CreatedAdminToken};

/// Admin token subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue an admin token; it is printed once.
    Create {
        /// What the token is for.
        #[arg(long)]
        description: String,
    },
    /// List admin tokens (never the tokens themselves).
    List {
        /// Also list revoked tokens.
        #[arg(long)]
        include_revoked: bool,
    },
    /// Revoke an admin token (a token cannot revoke itself).
    Revoke {
        /// The token's id (from `token list`).
        token_id: String,
    },
}

/// Runs an admin token subcommand.
pub async fn run(client: &ApiClient, json: bool, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { description } => {
            let answer = client
                .post(
                    &["admin-tokens"],
                    Some(&json!({ "description": description })),
                )
                .await?;
            if json {
                output::json(&answer.body);
            } else {
                let created: CreatedAdminToken = answer.parse()?;
                output::fields(&[
                    ("token_id", created.admin_token.token_id),
                    ("description", created.admin_token.description),
                    ("token", created.token),
                ]);
                println!("The token is shown only now; store it safely.");
            }
        }
        TokenCommand::List { include_revoked } => {
            let query = [("include_revoked", include_revoked.to_string())];
            let answer = client.get(&["admin-tokens"], &query).await?;
            if json {
                output::json(&answer.body);
            } else {
                let list: AdminTokenList = answer.parse()?;
                let rows: Vec<Vec<String>> = list
                    .admin_tokens
                    .iter()
                    .map(|token| {
                        vec![
                            token.token_id.clone(),
                            if token.revoked { "revoked" } else { "live" }.into(),
                            token.created_at.clone(),
                            token.description.clone(),
                        ]
                    })
                    .collect();
                output::table(&["TOKEN_ID", "STATE", "CREATED_AT", "DESCRIPTION"], &rows);
            }
        }
        TokenCommand::Revoke { token_id } => {
            let answer = client.delete(&["admin-tokens", &token_id]).await?;
            if json {
                output::json(&answer.body);
            } else {
                println!("Revoked admin token {token_id}.");
            }
        }
    }
    Ok(())
}
