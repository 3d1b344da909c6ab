//! sshd refuses sessions beyond `MaxSessions` per connection; such a refused
//! session ran nothing, so the transport opens it again.

use pvefleet_exec::transport::{SshOptions, SshTransport, Transport};
use pvefleet_test_support::TestBed;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sessions_are_opened_again() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_pvefleet"));
    // sshd allows 2 sessions per connection; the transport sends 6 at once
    // over what it takes for one connection.
    let bed = TestBed::start_with_sessions(&exe, &["pve"], &[], 2)
        .unwrap_or_else(|e| panic!("test bed: {e}"));
    let options = SshOptions {
        config_file: Some(bed.ssh_config.display().to_string()),
        accept_new_host_key: false,
        connect_timeout: Duration::from_secs(10),
    };
    let t: Arc<dyn Transport> = Arc::new(SshTransport::new("pve", None, None, options, 6));
    t.connect().await.expect("connect");
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                t.run(vec![
                    "sh".into(),
                    "-c".into(),
                    "sleep 1; echo $0".into(),
                    i.to_string(),
                ])
                .await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let out = task
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("command {i}: {e}"));
        assert!(out.success(), "command {i}: {out:?}");
        assert_eq!(out.stdout.trim(), i.to_string());
    }
    t.close().await;
}
