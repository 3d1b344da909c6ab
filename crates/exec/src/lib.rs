//! Execution: how argv reaches a node ([`transport`]), how several commands
//! share one round trip ([`script`]), how the nodes are read ([`observe`]),
//! how a plan is applied ([`runner`]) and what a run reports ([`event`]).
//!
//! With the emulator's own binary and the CLI, this is the only crate that
//! spawns processes or connects.

pub mod event;
pub mod observe;
pub mod runner;
pub mod script;
pub mod transport;

pub use event::{Event, Reporter, VmOutcome, VmResult};
pub use runner::{ApplyOptions, Transports, INTERRUPTED};
pub use tokio_util::sync::CancellationToken;
pub use transport::{Transport, TransportError};
