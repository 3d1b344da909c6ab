//! The pvefleet configuration language: one YAML file in, a validated
//! [`Desired`] state out.
//!
//! Parsing has two stages. [`raw`] turns YAML text into a tree that keeps the
//! line and column of every key and value. [`validate`] checks that tree
//! completely (every error in one pass, each with its location), applies
//! `defaults:` and yields [`Desired`]: plain values, with a [`SpanMap`]
//! beside them that says where each VM and each effective value came from.
//!
//! The crate is pure: reading `ssh_keys_file` goes through a loader the caller
//! passes in, so nothing here touches the file system.

pub mod error;
pub mod keys;
pub mod limits;
pub mod raw;
pub use pvefleet_model::{span, spec};
pub mod validate;

pub use error::{ConfigError, ConfigReport, ErrorKind};
pub use span::{Span, SpanMap};
pub use spec::{
    CloneRef, Desired, DiskFrom, DiskSource, ImageRef, ImageUrl, Ip6Config, IpConfig, NodeConn,
    PowerState, VmSpec, WaitFor,
};
pub use validate::{parse, FileLoader};
