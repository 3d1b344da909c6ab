//! Ctrl-C and SIGTERM. The first signal cancels the run: no new step is
//! started, running ones end (bounded by `--command-timeout`), what this
//! run created and did not finish is rolled back, connections are closed
//! and pvefleet exits 130. A second signal aborts at once, still closing
//! every SSH master connection first.

use pvefleet_exec::{CancellationToken, Transport};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

fn token_cell() -> &'static CancellationToken {
    static TOKEN: OnceLock<CancellationToken> = OnceLock::new();
    TOKEN.get_or_init(CancellationToken::new)
}

fn open() -> &'static Mutex<Vec<Arc<dyn Transport>>> {
    static OPEN: OnceLock<Mutex<Vec<Arc<dyn Transport>>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(Vec::new()))
}

/// The run's cancellation, cancelled by the first signal.
pub fn token() -> CancellationToken {
    token_cell().clone()
}

/// True once a signal arrived.
pub fn interrupted() -> bool {
    token_cell().is_cancelled()
}

/// Remembers a transport, to close on an abort.
pub fn register(t: Arc<dyn Transport>) {
    if let Ok(mut v) = open().lock() {
        v.push(t);
    }
}

/// Closes every registered transport (at most a few seconds).
pub async fn close_all() {
    let all: Vec<Arc<dyn Transport>> = open().lock().map(|v| v.clone()).unwrap_or_default();
    let closing = async {
        for t in all {
            t.close().await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
}

/// Listens for SIGINT and SIGTERM for the rest of the process.
pub fn install() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            count += 1;
            if count == 1 {
                eprintln!("interrupted: no new steps; waiting for the running ones, then rolling back what this run did not finish (Ctrl-C again to abort now)");
                token_cell().cancel();
            } else {
                eprintln!("aborting: closing connections");
                close_all().await;
                std::process::exit(130);
            }
        }
    });
}
