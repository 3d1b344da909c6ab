//! The planner: what is on the nodes ([`observed`]) against what the file
//! asks for ([`pvefleet_model::spec::Desired`]) gives a [`Plan`] of typed commands.
//!
//! Everything here is pure: the executor runs the reads of [`reads`] and
//! hands the answers to [`observed`]; [`diff::plan`] is a function of its
//! inputs.

pub mod adopt;
pub mod cache;
pub mod create;
pub mod destroy;
pub mod diff;
pub mod download;
pub mod hardware;
pub mod ids;
pub mod lifecycle;
pub mod lifecycle_observed;
pub mod lookup;
pub mod note;
pub mod observed;
pub mod options;
pub mod placement;
pub mod problem;
pub mod reads;
pub mod snippets;
pub mod types;
pub mod update;

pub use destroy::{destroy_plan, DestroyInput, DestroyPlan};
pub use diff::{plan, PlanInput};
pub use lookup::{find_existing, selected};
pub use observed::{ClusterVm, NodeState, Observed, PveVersion, VmConfig};
pub use problem::{PlanNote, PlanProblem};
pub use reads::{read_plan, read_plan_for_destroy, NodeReads, Read, ReadPlan};
pub use types::{
    Action, Change, Check, InputSource, Leftover, Plan, Prelude, Step, StepInput, StorageLock,
    Upload, VmPlan, CACHE_TAG,
};
