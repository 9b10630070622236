//! `portcullis session …`

use clap::{ArgGroup, Subcommand};

use super::client::ApiClient;
use super::output::{self, or_dash};
use crate::http::admin::sessions::{SessionList, SignedOut};

/// Session subcommands.
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List a user's sessions.
    List {
        /// The user's id.
        user_id: String,
        /// Also list ended sessions.
        #[arg(long)]
        include_ended: bool,
    },
    /// End one session, or with --user every session of a user.
    #[command(group(ArgGroup::new("target").required(true).args(["session_id", "user"])))]
    Terminate {
        /// The session's id.
        session_id: Option<String>,
        /// End every live session of this user (by id) instead.
        #[arg(long, value_name = "USER_ID")]
        user: Option<String>,
    },
}

/// Runs a session subcommand.
pub async fn run(client: &ApiClient, json: bool, command: SessionCommand) -> anyhow::Result<()> {
    match command {
        SessionCommand::List {
            user_id,
            include_ended,
        } => {
            let query = [("include_ended", include_ended.to_string())];
            let answer = client.get(&["users", &user_id, "sessions"], &query).await?;
            if json {
                output::json(&answer.body);
            } else {
                let list: SessionList = answer.parse()?;
                let rows: Vec<Vec<String>> = list
                    .sessions
                    .iter()
                    .map(|session| {
                        vec![
                            session.session_id.clone(),
                            if session.terminated { "ended" } else { "live" }.into(),
                            session.auth_time.clone(),
                            session.expires_at.clone(),
                            or_dash(session.user_agent.as_deref()),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "SESSION_ID",
                        "STATE",
                        "AUTH_TIME",
                        "EXPIRES_AT",
                        "USER_AGENT",
                    ],
                    &rows,
                );
            }
        }
        SessionCommand::Terminate {
            session_id: Some(session_id),
            user: None,
        } => {
            let answer = client.delete(&["sessions", &session_id]).await?;
            if json {
                output::json(&answer.body);
            } else {
                println!("Ended session {session_id}.");
            }
        }
        SessionCommand::Terminate {
            user: Some(user_id),
            ..
        } => {
            let answer = client.delete(&["users", &user_id, "sessions"]).await?;
            if json {
                output::json(&answer.body);
            } else {
                let signed_out: SignedOut = answer.parse()?;
                println!(
                    "Ended {} session(s) of user {user_id}.",
                    signed_out.terminated
                );
            }
        }
        // The argument group requires exactly one of the two.
        SessionCommand::Terminate {
            session_id: None,
            user: None,
        } => anyhow::bail!("name a session, or a user with --user"),
    }
    Ok(())
}
