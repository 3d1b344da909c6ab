//! Cloud-init snippets: after its upload into the run's folder, a snippet
//! is copied to its storage's `snippets/` folder ([`Command::InstallFile`]).

use super::Lane;
use pvefleet_model::Command;

impl Lane {
    /// Copies an uploaded file to `dest` on the node (a cloud-init snippet
    /// into its storage's `snippets/` folder); false, said, on failure.
    pub(super) async fn install(&self, node: &str, src: &str, dest: &str) -> bool {
        let cmd = Command::InstallFile {
            src: src.to_string(),
            dest: dest.to_string(),
        };
        match self.transport.run(cmd.argv()).await {
            Ok(out) if out.success() => true,
            Ok(out) => {
                self.say(node, format!("cannot write {dest}: {}", out.stderr.trim()));
                false
            }
            Err(e) => {
                self.say(node, e.to_string());
                false
            }
        }
    }
}
