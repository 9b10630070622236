//! `portcullis features …`: the instance's feature flags — list, set, reset to the system value.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::client::ApiClient;
use super::output;
use crate::http::admin::features::{FeatureBody, FeatureList};

/// Feature subcommands.
#[derive(Debug, Subcommand)]
pub enum FeatureCommand {
    /// List every feature: system value, instance value, value in force.
    List,
    /// Show one feature's values.
    Show {
        /// The feature's name (see `features list`).
        name: String,
    },
    /// Set the instance value of a feature.
    Set {
        /// The feature's name (see `features list`).
        name: String,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        value: String,
    },
    /// Remove the instance value; the system value applies again.
    Reset {
        /// The feature's name.
        name: String,
    },
}

fn on_off(value: bool) -> String {
    if value { "on" } else { "off" }.into()
}

fn print(features: &[FeatureBody]) {
    let rows: Vec<Vec<String>> = features
        .iter()
        .map(|feature| {
            vec![
                feature.name.clone(),
                on_off(feature.effective),
                on_off(feature.system),
                feature.instance.map(on_off).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    output::table(&["FEATURE", "IN_FORCE", "SYSTEM", "INSTANCE"], &rows);
}

/// Runs a feature subcommand.
pub async fn run(client: &ApiClient, json: bool, command: FeatureCommand) -> anyhow::Result<()> {
    let answer = match &command {
        FeatureCommand::List => client.get(&["features"], &[]).await?,
        FeatureCommand::Show { name } => client.get(&["features", name], &[]).await?,
        FeatureCommand::Set { name, value } => {
            let body = json!({ "enabled": value == "on" });
            client
                .send(Method::PUT, &["features", name], &[], Some(&body))
                .await?
        }
        FeatureCommand::Reset { name } => client.delete(&["features", name]).await?,
    };
    if json {
        output::json(&answer.body);
        return Ok(());
    }
    match command {
        FeatureCommand::List => print(&answer.parse::<FeatureList>()?.features),
        FeatureCommand::Show { .. } | FeatureCommand::Set { .. } | FeatureCommand::Reset { .. } => {
            print(&[answer.parse::<FeatureBody>()?])
        }
    }
    Ok(())
}
