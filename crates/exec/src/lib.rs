//! Execution: how argv reaches a node ([`transport`]), how several commands
//! share one round trip ([`script`]), how the nodes are read ([`observe`])
//! and how a plan is applied ([`runner`]).
//!
//! This is the only crate (with the CLI) that spawns processes or connects.

pub mod observe;
pub mod runner;
pub mod script;
pub mod transport;

pub use runner::{ApplyOptions, Event, VmOutcome, VmResult};
pub use transport::{Transport, TransportError};
