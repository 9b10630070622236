//! `portcullis instance …`: instances (tenants) through the system API — create (printing the
//! first admin token once), list, show, remove. Authenticated by the system token, never by
//! an instance's admin token.

use std::io::{BufRead, IsTerminal};

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::json;

use super::client::ApiClient;
use super::{Connection, SYSTEM_TOKEN_VAR, output};
use crate::http::system::{CreatedInstance, InstanceBody, InstanceList};

/// `portcullis instance` and its system token.
#[derive(Debug, Args)]
pub struct InstanceArgs {
    /// The system token (the server's admin.system_token).
    #[arg(
        long,
        global = true,
        env = SYSTEM_TOKEN_VAR,
        hide_env_values = true,
        help_heading = "System API"
    )]
    system_token: Option<String>,
    #[command(subcommand)]
    command: InstanceCommand,
}

/// Instance subcommands.
#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Create an instance; its first admin token is printed once.
    Create {
        /// Its issuer URL; requests are routed to it by this URL's host. (Not `--url`: that
        /// global flag names the server the command talks to.)
        #[arg(long)]
        external_url: String,
        /// The name its pages show.
        #[arg(long)]
        name: String,
    },
    /// List every instance.
    List,
    /// Show one instance.
    Show {
        /// The instance's id.
        instance_id: String,
    },
    /// Remove an instance: its sessions end (applications are told), then its data goes.
    Remove {
        /// The instance's id.
        instance_id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

fn print(instances: &[InstanceBody]) {
    let rows: Vec<Vec<String>> = instances
        .iter()
        .map(|instance| {
            vec![
                instance.instance_id.clone(),
                instance.state.clone(),
                if instance.default { "yes" } else { "no" }.into(),
                instance.external_url.clone(),
                instance.display_name.clone(),
            ]
        })
        .collect();
    output::table(
        &["INSTANCE_ID", "STATE", "DEFAULT", "EXTERNAL_URL", "NAME"],
        &rows,
    );
}

/// Asks on the terminal; anything but `yes` aborts.
fn confirm(instance_id: &str) -> anyhow::Result<()> {
    eprint!(
        "Remove instance {instance_id}? Its sessions end and its users, applications and tokens \
         stop working. Type `yes` to go on: "
    );
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !std::io::stdin().is_terminal() {
        // A piped answer is not echoed: end the prompt's line ourselves.
        eprintln!();
    }
    if answer.trim() != "yes" {
        bail!("not removed (pass --yes to skip this question)");
    }
    Ok(())
}

/// Runs an instance subcommand.
pub async fn run(connection: &Connection, args: InstanceArgs) -> anyhow::Result<()> {
    let client = ApiClient::system(connection, args.system_token.as_deref())?;
    let json = connection.json;
    match args.command {
        InstanceCommand::Create { external_url, name } => {
            let body = json!({ "external_url": external_url, "display_name": name });
            let answer = client.post(&["instances"], Some(&body)).await?;
            if json {
                output::json(&answer.body);
                return Ok(());
            }
            let created: CreatedInstance = answer.parse()?;
            print(std::slice::from_ref(&created.instance));
            output::fields(&[("admin_token", created.admin_token)]);
            println!(
                "The instance's first admin token is shown only now; store it safely (only its \
                 hash is kept)."
            );
        }
        InstanceCommand::List => {
            let answer = client.get(&["instances"], &[]).await?;
            if json {
                output::json(&answer.body);
            } else {
                print(&answer.parse::<InstanceList>()?.instances);
            }
        }
        InstanceCommand::Show { instance_id } => {
            let answer = client.get(&["instances", &instance_id], &[]).await?;
            if json {
                output::json(&answer.body);
            } else {
                print(&[answer.parse::<InstanceBody>()?]);
            }
        }
        InstanceCommand::Remove { instance_id, yes } => {
            if !yes {
                confirm(&instance_id)?;
            }
            let answer = client.delete(&["instances", &instance_id]).await?;
            if json {
                output::json(&answer.body);
            } else if answer.status == reqwest::StatusCode::ACCEPTED {
                println!(
                    "Instance {instance_id} is being removed: it answers no more; its data goes \
                     once its applications' logout notifications settled (see `instance show`)."
                );
            } else {
                println!("Removed instance {instance_id}; its applications were told.");
            }
        }
    }
    Ok(())
}
