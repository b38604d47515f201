//! Client-side tools of the `timberline` command, apart from the server's data path: loading
//! log files into a running server, following its live tail, managing its alert rules, and
//! benchmarking one. They reach the server over HTTP and pgwire as any client does.

pub mod alert;
pub mod bench;
pub mod load;
mod shipper_bodies;
pub mod tail;
mod tail_bench;

/// The server a client command talks to, and the API key it uses (whose tenant it acts for).
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// The server's HTTP address (`http://` may be left out).
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "TIMBERLINE_SERVER"
    )]
    pub server: String,
    /// The API key (its tenant is the one acted for).
    #[arg(long, env = "TIMBERLINE_API_KEY", default_value = crate::auth::DEMO_API_KEY, hide_env_values = true)]
    pub api_key: String,
}

impl Remote {
    /// The URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        let base = self.server.trim_end_matches('/');
        if base.contains("://") {
            format!("{base}{path}")
        } else {
            format!("http://{base}{path}")
        }
    }
}
