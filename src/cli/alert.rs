//! `timberline alert add|list|mute|unmute|rm`: a running server's alert rules, through its
//! `/v1/alerts` API (the API key's tenant's rules).

use serde_json::{json, Value};

use super::Remote;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AlertCommand {
    /// Add a rule: `alert add payments-errors --sql "SELECT service, count(*) FROM logs WHERE
    /// level = 'ERROR' AND ts > now() - interval '5 minutes' GROUP BY service" --above 50
    /// --every 30s --for 2m --cooldown 15m`.
    Add {
        name: String,
        /// A query over `logs` ending in a number column; its other columns are labels (one
        /// alert per label set).
        #[arg(long)]
        sql: String,
        /// Fire when the value is above this.
        #[arg(long, allow_negative_numbers = true)]
        above: Option<f64>,
        /// Fire when the value is below this.
        #[arg(long, allow_negative_numbers = true)]
        below: Option<f64>,
        /// How often the query runs [default: 1m].
        #[arg(long)]
        every: Option<String>,
        /// How long the value must stay over the threshold before it fires [default: 0s].
        #[arg(long = "for")]
        hold: Option<String>,
        /// Least time between two firing notifications of one label set [default: 15m].
        #[arg(long)]
        cooldown: Option<String>,
        /// Text sent with each notification.
        #[arg(long)]
        summary: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the rules with their state.
    List {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Mute a rule (it is still evaluated; nothing is sent) for a while, or until unmuted.
    Mute {
        name: String,
        /// How long (`1h`); until `alert unmute` when left out.
        #[arg(long = "for")]
        hold: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Unmute a rule.
    Unmute {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a rule (receivers told of its firing alerts are told they resolved).
    Rm {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertCliError {
    #[error("cannot reach the Timberline server at {url} ({reason}); is `timberline serve` running there? Point --server (or TIMBERLINE_SERVER) at its HTTP address")]
    Unreachable { url: String, reason: String },
    #[error("the server refused ({status}): {reason}")]
    Refused { status: u16, reason: String },
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Runs the command; prints what the server answered.
pub async fn run(cmd: AlertCommand) -> Result<(), AlertCliError> {
    let (remote, method, path, body, json_out) = match &cmd {
        AlertCommand::Add {
            name,
            sql,
            above,
            below,
            every,
            hold,
            cooldown,
            summary,
            remote,
        } => {
            let mut body = json!({ "name": name, "sql": sql, "above": above, "below": below });
            for (k, v) in [
                ("every", every),
                ("for", hold),
                ("cooldown", cooldown),
                ("summary", summary),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            (remote, "POST", "/v1/alerts".to_string(), Some(body), false)
        }
        AlertCommand::List { json, remote } => (remote, "GET", "/v1/alerts".into(), None, *json),
        AlertCommand::Mute { name, hold, remote } => (
            remote,
            "POST",
            format!("/v1/alerts/{}/mute", encode(name)),
            hold.as_ref().map(|h| json!({ "for": h })),
            false,
        ),
        AlertCommand::Unmute { name, remote } => (
            remote,
            "POST",
            format!("/v1/alerts/{}/unmute", encode(name)),
            None,
            false,
        ),
        AlertCommand::Rm { name, remote } => (
            remote,
            "DELETE",
            format!("/v1/alerts/{}", encode(name)),
            None,
            false,
        ),
    };
    let client = crate::cli::load::http_client(&remote.api_key)?;
    let url = remote.url(&path);
    let req = match method {
        "GET" => client.get(&url),
        "DELETE" => client.delete(&url),
        _ => client.post(&url),
    };
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req.send().await.map_err(|e| AlertCliError::Unreachable {
        url: remote.url(""),
        reason: crate::cli::load::unreachable_reason(&e),
    })?;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let reason = answer["error"]
            .as_str()
            .unwrap_or("no reason given")
            .to_string();
        return Err(AlertCliError::Refused {
            status: status.as_u16(),
            reason,
        });
    }
    if json_out {
        println!("{answer}");
        return Ok(());
    }
    match &cmd {
        AlertCommand::List { .. } => {
            let rules = answer["rules"].as_array().cloned().unwrap_or_default();
            if rules.is_empty() {
                println!("no alert rules");
            }
            for r in &rules {
                print_rule(r);
            }
        }
        AlertCommand::Rm { name, .. } => println!("removed {name}"),
        _ => print_rule(&answer),
    }
    Ok(())
}

/// A rule in a few lines: name, threshold, schedule, mute, then its label sets.
fn print_rule(r: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut flags = Vec::new();
    if r["muted"].as_bool() == Some(true) {
        flags.push(match r["muted_until"].as_str() {
            Some(t) => format!("muted until {t}"),
            None => "muted".into(),
        });
    }
    if let Some(s) = r["silenced_by"].as_str() {
        flags.push(format!("silenced by {s}"));
    }
    if let Some(e) = r["last_error"].as_str() {
        flags.push(format!("error: {e}"));
    }
    println!(
        "{}  {}  every {} for {} cooldown {}{}",
        text(&r["name"]),
        text(&r["threshold"]),
        text(&r["every"]),
        text(&r["for"]),
        text(&r["cooldown"]),
        if flags.is_empty() {
            String::new()
        } else {
            format!("  ({})", flags.join("; "))
        }
    );
    for s in r["series"].as_array().into_iter().flatten() {
        println!(
            "  {:8} {:>12} {}",
            text(&s["state"]),
            s["value"]
                .as_f64()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            s["labels"]
        );
    }
}

/// A rule name as a path segment (names are letters, digits, `-`, `_`, `.`; others are escaped).
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
