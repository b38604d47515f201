//! How `--follow` notices that a file grew, was rotated or truncated: inotify on the file's
//! directory (the `notify` crate), so a written line is read at once; polling every
//! [`FOLLOW_POLL`] where inotify is unavailable or `--poll` asks for it (network filesystems,
//! whose remote writes raise no local events).

use std::path::Path;
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// How often a polled file is checked for new lines, rotation and truncation.
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// With events, how long a record may wait for more of its lines (a stack trace written in
/// pieces) before it is sent.
pub const QUIET: Duration = Duration::from_millis(30);
/// With events, how often the file is looked at anyway (an event missed is not a line lost).
const SAFETY_POLL: Duration = Duration::from_secs(1);

/// Waits for a followed file to change.
pub struct Waker {
    /// `None`: polling.
    events: Option<(RecommendedWatcher, Receiver<()>)>,
}

impl Waker {
    /// Watches `path`'s directory (where a rotated file's successor appears); polls when that
    /// cannot be done or `poll` is set.
    pub fn new(path: Option<&Path>, poll: bool) -> Waker {
        let Some(path) = path.filter(|_| !poll) else {
            return Waker { events: None };
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let (tx, rx) = channel();
        let watched = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = tx.send(());
            }
        })
        .and_then(|mut w| w.watch(dir, RecursiveMode::NonRecursive).map(|_| w));
        match watched {
            Ok(watcher) => Waker {
                events: Some((watcher, rx)),
            },
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "no file events; polling every 100 ms");
                Waker { events: None }
            }
        }
    }

    /// Blocks until the file may have changed. With events: the next event, or `QUIET` when a
    /// record is waiting for more lines, else [`SAFETY_POLL`]. Polling: [`FOLLOW_POLL`].
    pub fn wait(&self, record_waiting: bool) {
        match &self.events {
            Some((_, rx)) => {
                let timeout = if record_waiting { QUIET } else { SAFETY_POLL };
                if rx.recv_timeout(timeout).is_ok() {
                    // One read covers every event already queued.
                    while rx.try_recv().is_ok() {}
                }
            }
            None => std::thread::sleep(FOLLOW_POLL),
        }
    }
}
