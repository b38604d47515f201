//! How `--follow` notices that a file grew, was rotated or truncated: inotify on the file's
//! directory (the `notify` crate), so a written line is read at once; polling every
//! [`FOLLOW_POLL`] where inotify is unavailable or `--poll` asks for it (network filesystems,
//! whose remote writes raise no local events).

use std::ffi::OsString;
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

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
    /// Watches the directory of `path` and, for a symlink, of the file it points to (where a
    /// rotated file's successor appears); polls when that cannot be done or `poll` is set.
    pub fn new(path: Option<&Path>, poll: bool) -> Waker {
        let Some(path) = path.filter(|_| !poll) else {
            return Waker { events: None };
        };
        let mut paths = vec![path.to_path_buf()];
        if let Ok(real) = std::fs::canonicalize(path) {
            if real != path {
                paths.push(real);
            }
        }
        let names: Vec<OsString> = paths
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
            .collect();
        let (tx, rx) = channel();
        // Changes to the followed file (or a file taking its name) wake the reader; reads and
        // opens, the reader's own among them, do not. An error wakes it too, to look.
        let handler = move |event: notify::Result<notify::Event>| {
            let wake = match event {
                Ok(e) => {
                    matches!(
                        e.kind,
                        EventKind::Modify(_) | EventKind::Create(_) | EventKind::Remove(_)
                    ) && e.paths.iter().any(|p| {
                        p.file_name()
                            .is_some_and(|n| names.iter().any(|m| m.as_os_str() == n))
                    })
                }
                Err(_) => true,
            };
            if wake {
                let _ = tx.send(());
            }
        };
        let watched = notify::recommended_watcher(handler).and_then(|mut w| {
            for p in &paths {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                w.watch(dir, RecursiveMode::NonRecursive)?;
            }
            Ok(w)
        });
        match watched {
            Ok(watcher) => Waker {
                events: Some((watcher, rx)),
            },
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "no file events; polling every 100 ms");
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
                match rx.recv_timeout(timeout) {
                    // One read covers every event already queued.
                    Ok(()) => while rx.try_recv().is_ok() {},
                    Err(RecvTimeoutError::Timeout) => {}
                    // The watcher is gone: poll.
                    Err(RecvTimeoutError::Disconnected) => std::thread::sleep(FOLLOW_POLL),
                }
            }
            None => std::thread::sleep(FOLLOW_POLL),
        }
    }
}
