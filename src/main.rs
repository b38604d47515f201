//! The `timberline` command: serve, ingest, generate, bench.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Ingest allocates many small strings per event; mimalloc serves that far better than glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use timberline::cli::load::{load, LoadOptions};
use timberline::config::{Config, Overrides};
use timberline::generate::{parse_level_mix, Generator};
use timberline::server::{run_demo, Server};

#[derive(Parser)]
#[command(
    name = "timberline",
    version,
    about = "A log store that speaks PostgreSQL",
    // A flag given twice takes its last value, as in most Unix tools (and scripts that add
    // to a base command line).
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How the server's own log lines (stderr) are written: `text`, or `json` (one object a
    /// line, with the span fields: a request's `request_id` and `route`).
    #[arg(
        long,
        global = true,
        env = "TIMBERLINE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Export the server's own traces (ingest, queries) over OTLP/HTTP to this URL, e.g.
    /// `http://127.0.0.1:4318/v1/traces` or a Timberline's own `/v1/traces`; headers from
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` [default: none, no traces].
    #[arg(long, global = true, env = "TIMBERLINE_OTLP_TRACES_ENDPOINT")]
    otlp_traces_endpoint: Option<String>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP ingest + PostgreSQL wire).
    Serve {
        /// Fill an empty store with generated logs and keep a live trickle going.
        #[arg(long)]
        demo: bool,
        /// TOML config file (keys as the flags, with underscores).
        #[arg(long, env = "TIMBERLINE_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Load log files (or `-` for stdin) into a running server.
    Ingest(LoadOptions),
    /// Follow a running server's live tail: `timberline tail --service checkout --level ERROR+ --since 10m`.
    Tail(timberline::cli::tail::TailOptions),
    /// A running server's alert rules: `timberline alert add|list|mute|unmute|rm`.
    Alert {
        #[command(subcommand)]
        what: timberline::cli::alert::AlertCommand,
    },
    /// Write generated logs (deterministic for a seed).
    Generate {
        #[arg(long, default_value_t = 10_000)]
        rows: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// ndjson or triage.
        #[arg(long, default_value = "ndjson")]
        format: String,
        /// Output file (default stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Level mix as weights.
        #[arg(long, default_value = "DEBUG=30,INFO=50,WARN=12,ERROR=7,FATAL=1")]
        levels: String,
        /// Time of the first event (RFC 3339).
        #[arg(long, default_value = "2024-01-15T00:00:00Z")]
        start: String,
        /// Average time between events, in microseconds (10 ms by default; 60480 spreads 10M
        /// rows over a week).
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(i64).range(1..=86_400_000_000))]
        step_us: i64,
    },
    /// Manage pg users: `timberline user add NAME --tenant T` (password from
    /// TIMBERLINE_NEW_PASSWORD or the first line of stdin).
    User {
        #[command(subcommand)]
        what: UserCommand,
    },
    /// Per-tenant settings: `timberline tenant set acme --retention 90d --ingest-events-per-sec 5000`
    /// (kept in the data directory; a running server picks them up without a restart).
    Tenant {
        #[command(subcommand)]
        what: TenantCommand,
    },
    /// Manage HTTP API keys: `timberline key add --tenant T`.
    Key {
        #[command(subcommand)]
        what: KeyCommand,
    },
    /// Measure a running server (see benches/RESULTS.md).
    Bench {
        #[command(subcommand)]
        what: timberline::cli::bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Make a new HTTP API key for a tenant and print it (only its hash is stored).
    Add {
        #[arg(long, default_value = timberline::model::DEFAULT_TENANT)]
        tenant: String,
        /// Data directory of the server.
        #[arg(long, env = "TIMBERLINE_DATA_DIR", default_value = "./timberline-data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Set a tenant's settings: tier policy (each a duration such as 90d, or never), ingest
    /// quota, redaction rules. Each one given replaces the stored one.
    Set {
        tenant: String,
        /// Delete the tenant's segments once their newest event is this old.
        #[arg(long)]
        retention: Option<String>,
        /// Move the tenant's segments to the object store once this old.
        #[arg(long)]
        cold_after: Option<String>,
        /// Compact the tenant's closed hours once this old.
        #[arg(long)]
        compact_after: Option<String>,
        /// Events a second the tenant may send (`unlimited` lifts the limit); over it, batches
        /// shed DEBUG first and keep ERROR/FATAL, or are refused with 429 and Retry-After.
        #[arg(long)]
        ingest_events_per_sec: Option<String>,
        /// Bytes a second the tenant may send: 5000000, 5MB, 4MiB, or `unlimited`.
        #[arg(long)]
        ingest_bytes_per_sec: Option<String>,
        /// How much of its rates the tenant may send at once, as a duration (default 2s).
        #[arg(long)]
        ingest_burst: Option<String>,
        /// PII detectors applied to the tenant's logs: default, none, or a list of email, card,
        /// jwt, aws_key, bearer, url_password, ipv4, ipv6 (and default).
        #[arg(long)]
        redact: Option<String>,
        /// The tenant's own redaction rule, NAME=REGEX (repeat for more; `none` clears them).
        #[arg(long)]
        redact_custom: Vec<String>,
        /// Most bytes one query of the tenant may scan (10GiB, 500MB, or `unlimited`); a
        /// session may lower its own with SET timberline.max_scan_bytes.
        #[arg(long)]
        max_scan_bytes: Option<String>,
        /// Most live-tail streams the tenant may hold open at once (default: the server's
        /// --tail-max-per-tenant).
        #[arg(long)]
        max_tail_streams: Option<String>,
        /// Most alert rules the tenant may keep (default: the server's --alert-max-rules).
        #[arg(long)]
        max_alert_rules: Option<String>,
        /// Data directory of the server.
        #[arg(long, env = "TIMBERLINE_DATA_DIR", default_value = "./timberline-data")]
        data_dir: PathBuf,
    },
    /// Print every tenant's settings (JSON).
    Show {
        /// Data directory of the server.
        #[arg(long, env = "TIMBERLINE_DATA_DIR", default_value = "./timberline-data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user (or replace its password and tenant); a running server sees it at once.
    Add {
        name: String,
        /// The tenant whose logs the user sees.
        #[arg(long, default_value = timberline::model::DEFAULT_TENANT)]
        tenant: String,
        /// Data directory of the server.
        #[arg(long, env = "TIMBERLINE_DATA_DIR", default_value = "./timberline-data")]
        data_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Planning and evaluating SQL recurse once per nesting level (bounded by the pg front
        // end's depth limit); give each thread room for that in a debug build too.
        .thread_stack_size(32 << 20)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("timberline: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let format = match cli.log_format {
        LogFormat::Text => timberline::telemetry::LogFormat::Text,
        LogFormat::Json => timberline::telemetry::LogFormat::Json,
    };
    let endpoint = cli.otlp_traces_endpoint.clone();
    let _telemetry =
        match timberline::telemetry::init(format, endpoint.as_deref(), runtime.handle().clone()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("timberline: {e}");
                return ExitCode::from(2);
            }
        };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("timberline: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Serve {
            demo,
            config,
            overrides,
        } => {
            let config = Config::load(config.as_deref(), &overrides)?;
            let server = Server::start(&config).await?;
            let mut ready = format!(
                "timberline ready http={} pg={}",
                server.http_addr, server.pg_addr
            );
            if let Some(a) = server.otlp_grpc_addr {
                ready.push_str(&format!(" otlp-grpc={a}"));
            }
            if let Some(a) = server.syslog_addr {
                ready.push_str(&format!(" syslog={a}"));
            }
            if let Some(a) = server.metrics_addr {
                ready.push_str(&format!(" metrics={a}"));
            }
            println!("{ready}");
            std::io::stdout().flush()?;
            let password = if config.password.is_some() {
                "the one in TIMBERLINE_PASSWORD / --password".to_string()
            } else {
                format!(
                    "{} (the demo password: set TIMBERLINE_PASSWORD)",
                    timberline::auth::DEMO_PASSWORD
                )
            };
            let key = if config.api_key.is_some() {
                "<the key in TIMBERLINE_API_KEY / --api-key>".to_string()
            } else {
                format!(
                    "{} (the demo key: set TIMBERLINE_API_KEY)",
                    timberline::auth::DEMO_API_KEY
                )
            };
            tracing::info!(
                "connect with: psql -h {} -p {} -U {} (password: {password})   |   send logs: POST http://{}/v1/ingest with Authorization: Bearer {key}",
                server.pg_addr.ip(),
                server.pg_addr.port(),
                timberline::auth::BOOTSTRAP_USER,
                server.http_addr
            );
            if demo {
                let empty =
                    server.store.catalog.segments().is_empty() && server.store.buffer.rows() == 0;
                tokio::spawn(run_demo(server.ingestor.clone(), empty));
            }
            shutdown_signal().await;
            // The hot buffer stays in the WAL (durable since each batch was acknowledged) and is
            // replayed at the next start with its sequence numbers, so a live tail resumes
            // exactly across a restart.
            tracing::info!(
                "shutting down: the hot buffer's rows are in the WAL, replayed at the next start"
            );
            drop(server);
            Ok(())
        }
        Command::Tail(opts) => Ok(timberline::cli::tail::run(opts).await?),
        Command::Alert { what } => Ok(timberline::cli::alert::run(what).await?),
        Command::Ingest(opts) => {
            let started = std::time::Instant::now();
            let report = load(opts).await?;
            let secs = started.elapsed().as_secs_f64();
            for file in &report.files {
                eprintln!("{}", file.summary());
            }
            println!(
                "ingested {} lines ({} bytes) in {:.2}s: {:.0} lines/s; accepted {}, failed {}, unparsed (stored raw) {}",
                report.lines,
                report.bytes,
                secs,
                report.lines as f64 / secs.max(1e-9),
                report.accepted,
                report.failed,
                report.parse_failed
            );
            Ok(())
        }
        Command::Generate {
            rows,
            seed,
            format,
            out,
            levels,
            start,
            step_us,
        } => {
            let levels = parse_level_mix(&levels).ok_or_else(|| {
                format!("bad --levels {levels:?}: use NAME=WEIGHT,… e.g. INFO=90,ERROR=10")
            })?;
            let mut sink: Box<dyn Write> = match out {
                Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let start = chrono::DateTime::parse_from_rfc3339(&start)
                .map_err(|e| format!("bad --start {start:?}: {e} (use e.g. 2024-01-15T00:00:00Z)"))?
                .timestamp_micros();
            let mut gen = Generator::new(seed, start, step_us).with_levels(levels);
            for _ in 0..rows {
                match format.as_str() {
                    "triage" => writeln!(sink, "{}", gen.next_triage_line())?,
                    "ndjson" => writeln!(sink, "{}", gen.next_event())?,
                    other => {
                        return Err(format!("unknown format {other:?}: use ndjson or triage").into())
                    }
                }
            }
            sink.flush()?;
            Ok(())
        }
        Command::User {
            what:
                UserCommand::Add {
                    name,
                    tenant,
                    data_dir,
                },
        } => {
            let password = match std::env::var("TIMBERLINE_NEW_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            timberline::auth::add_user(&data_dir, &name, &tenant, &password)?;
            println!(
                "user {name} (tenant {tenant}) saved in {}",
                data_dir.display()
            );
            Ok(())
        }
        Command::Key {
            what: KeyCommand::Add { tenant, data_dir },
        } => {
            let key = timberline::auth::add_api_key(&data_dir, &tenant)?;
            println!("{key}");
            eprintln!(
                "API key for tenant {tenant} saved in {}",
                data_dir.display()
            );
            Ok(())
        }
        Command::Tenant {
            what:
                TenantCommand::Set {
                    tenant,
                    retention,
                    cold_after,
                    compact_after,
                    ingest_events_per_sec,
                    ingest_bytes_per_sec,
                    ingest_burst,
                    redact,
                    redact_custom,
                    max_scan_bytes,
                    max_tail_streams,
                    max_alert_rules,
                    data_dir,
                },
        } => {
            let redact_custom = match redact_custom.as_slice() {
                [] => None,
                [one] if one == "none" => Some(Vec::new()),
                _ => Some(redact_custom),
            };
            let change = timberline::tenants::TenantSettings {
                retention,
                cold_after,
                compact_after,
                ingest_events_per_sec,
                ingest_bytes_per_sec,
                ingest_burst,
                redact,
                redact_custom,
                max_scan_bytes,
                max_tail_streams,
                max_alert_rules,
            };
            let now = timberline::tenants::update(
                &data_dir,
                &tenant,
                &change,
                |now| -> Result<(), Box<dyn std::error::Error>> {
                    timberline::store::policy::apply(now, Default::default())?;
                    timberline::ingest::tenant_rules::check(now, "default")?;
                    timberline::query::budget::tenant_limit(now)?;
                    timberline::tail::tenant_limit(now)?;
                    timberline::alerts::tenant_limit(now)?;
                    Ok(())
                },
            )?;
            println!("{}", serde_json::to_string(&now)?);
            eprintln!("tenant {tenant}'s settings saved in {}", data_dir.display());
            Ok(())
        }
        Command::Tenant {
            what: TenantCommand::Show { data_dir },
        } => {
            let all = timberline::tenants::read_all(&data_dir)?;
            println!("{}", serde_json::to_string_pretty(&all)?);
            Ok(())
        }
        Command::Bench { what } => timberline::cli::bench::run(what).await,
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
