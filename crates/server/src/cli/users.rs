//! `portcullis user …`

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::client::ApiClient;
use super::output::{self, or_dash};
use super::secret;
use crate::http::admin::users::{UserBody, UserList, UserStatus};

/// User subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password comes from stdin or PORTCULLIS_USER_PASSWORD.
    Create {
        /// The login name.
        #[arg(long)]
        username: String,
        /// Read the password from stdin (one line).
        #[arg(long)]
        password_stdin: bool,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Mark the e-mail address as verified.
        #[arg(long, requires = "email")]
        email_verified: bool,
        /// Given name(s).
        #[arg(long)]
        given_name: Option<String>,
        /// Family name.
        #[arg(long)]
        family_name: Option<String>,
    },
    /// List users by login name.
    List {
        /// Page size (1 to 500).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Start after this login name.
        #[arg(long)]
        after: Option<String>,
    },
    /// Show one user.
    Show {
        /// The user's id.
        user_id: String,
    },
    /// Change a user's profile: each given flag replaces that field; the rest stay.
    Update {
        /// The user's id.
        user_id: String,
        /// E-mail address.
        #[arg(long, conflicts_with = "no_email")]
        email: Option<String>,
        /// Remove the e-mail address.
        #[arg(long)]
        no_email: bool,
        /// Whether the e-mail address is verified (`true` or `false`).
        #[arg(long)]
        email_verified: Option<bool>,
        /// Given name(s).
        #[arg(long)]
        given_name: Option<String>,
        /// Family name.
        #[arg(long)]
        family_name: Option<String>,
    },
    /// Set a user's password (from stdin or PORTCULLIS_USER_PASSWORD).
    SetPassword {
        /// The user's id.
        user_id: String,
        /// Read the password from stdin (one line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop a user from signing in and end the user's sessions.
    Deactivate {
        /// The user's id.
        user_id: String,
    },
    /// Let a deactivated user sign in again.
    Reactivate {
        /// The user's id.
        user_id: String,
    },
    /// Remove a user, ending the user's sessions.
    Delete {
        /// The user's id.
        user_id: String,
    },
}

/// Runs a user subcommand.
pub async fn run(client: &ApiClient, json: bool, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create {
            username,
            password_stdin,
            email,
            email_verified,
            given_name,
            family_name,
        } => {
            let password = secret::password(password_stdin)?;
            let mut body = Map::new();
            body.insert("username".into(), json!(username));
            body.insert("password".into(), json!(password));
            for (name, value) in [
                ("email", email),
                ("given_name", given_name),
                ("family_name", family_name),
            ] {
                if let Some(value) = value {
                    body.insert(name.into(), json!(value));
                }
            }
            if email_verified {
                body.insert("email_verified".into(), json!(true));
            }
            let answer = client.post(&["users"], Some(&Value::Object(body))).await?;
            if json {
                output::json(&answer.body);
            } else {
                let user: UserBody = answer.parse()?;
                println!("Created user {}.", user.username);
                show(&user);
            }
        }
        UserCommand::List { limit, after } => {
            let mut query = vec![("limit", limit.to_string())];
            query.extend(after.map(|after| ("after", after)));
            let answer = client.get(&["users"], &query).await?;
            if json {
                output::json(&answer.body);
            } else {
                let list: UserList = answer.parse()?;
                let rows: Vec<Vec<String>> = list
                    .users
                    .iter()
                    .map(|user| {
                        vec![
                            user.user_id.clone(),
                            user.username.clone(),
                            status(user.state).into(),
                            or_dash(user.email.as_deref()),
                        ]
                    })
                    .collect();
                output::table(&["USER_ID", "USERNAME", "STATE", "EMAIL"], &rows);
                if let Some(next) = list.next_after {
                    println!("(more: --after {next})");
                }
            }
        }
        UserCommand::Show { user_id } => {
            let answer = client.get(&["users", &user_id], &[]).await?;
            if json {
                output::json(&answer.body);
            } else {
                show(&answer.parse()?);
            }
        }
        UserCommand::Update {
            user_id,
            email,
            no_email,
            email_verified,
            given_name,
            family_name,
        } => {
            // The API replaces the whole profile, so start from the current one.
            let current: UserBody = client.get(&["users", &user_id], &[]).await?.parse()?;
            let email = if no_email {
                None
            } else {
                email.or(current.email)
            };
            let body = json!({
                "email_verified": email_verified.unwrap_or(current.email_verified) && email.is_some(),
                "email": email,
                "given_name": given_name.or(current.given_name),
                "family_name": family_name.or(current.family_name),
            });
            let answer = client
                .send(reqwest::Method::PUT, &["users", &user_id], &[], Some(&body))
                .await?;
            if json {
                output::json(&answer.body);
            } else {
                let user: UserBody = answer.parse()?;
                println!("Updated user {}.", user.username);
                show(&user);
            }
        }
        UserCommand::SetPassword {
            user_id,
            password_stdin,
        } => {
            let password = secret::password(password_stdin)?;
            let answer = client
                .post(
                    &["users", &user_id, "password"],
                    Some(&json!({ "password": password })),
                )
                .await?;
            if json {
                output::json(&answer.body);
            } else {
                println!("Set the password of user {user_id}.");
            }
        }
        UserCommand::Deactivate { user_id } => {
            let answer = client
                .post(&["users", &user_id, "deactivate"], None)
                .await?;
            if json {
                output::json(&answer.body);
            } else {
                let user: UserBody = answer.parse()?;
                println!(
                    "Deactivated user {}; the user's sessions have ended.",
                    user.username
                );
            }
        }
        UserCommand::Reactivate { user_id } => {
            let answer = client
                .post(&["users", &user_id, "reactivate"], None)
                .await?;
            if json {
                output::json(&answer.body);
            } else {
                let user: UserBody = answer.parse()?;
                println!("Reactivated user {}.", user.username);
            }
        }
        UserCommand::Delete { user_id } => {
            let answer = client.delete(&["users", &user_id]).await?;
            if json {
                output::json(&answer.body);
            } else {
                println!("Deleted user {user_id}.");
            }
        }
    }
    Ok(())
}

fn status(state: UserStatus) -> &'static str {
    match state {
        UserStatus::Active => "active",
        UserStatus::Inactive => "inactive",
    }
}

fn show(user: &UserBody) {
    output::fields(&[
        ("user_id", user.user_id.clone()),
        ("username", user.username.clone()),
        ("state", status(user.state).into()),
        ("email", or_dash(user.email.as_deref())),
        ("email_verified", user.email_verified.to_string()),
        ("given_name", or_dash(user.given_name.as_deref())),
        ("family_name", or_dash(user.family_name.as_deref())),
        ("created_at", user.created_at.clone()),
    ]);
}
