//! The planner: what is on the nodes ([`observed`]) against what the file
//! asks for ([`pvefleet_config::Desired`]) gives a [`Plan`] of typed commands.
//!
//! Everything here is pure: the executor fetches pvesh JSON and hands the
//! bytes to [`observed`]; [`diff::plan`] is a function of its inputs.

pub mod diff;
pub mod observed;
pub mod options;

pub use diff::{plan, Action, Check, Plan, PlanInput, Step, Upload, VmPlan};
pub use observed::{ClusterVm, NodeState, Observed, PveVersion, VmConfig};
