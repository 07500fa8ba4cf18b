//! Intake's shared core: the record model over Automerge, form schemas and their
//! validation, and (later) the sync protocol. This crate does no I/O: no files, no
//! network, no clocks — callers pass the time in — so that the client and the server
//! run exactly the same logic and tests can drive it deterministically.

pub mod fold;
pub mod form;
pub mod ids;
pub mod lang;
pub mod pack;
pub mod plan;
pub mod protocol;
pub mod record;
pub mod skew;
pub mod status;
pub mod validate;
pub mod value;

pub use fold::fold;
pub use form::{Field, FieldType, Form, FormError, FormRegistry};
pub use ids::RecordId;
pub use lang::Lang;
pub use record::{Conflict, ConflictValue, Edit, FieldEvent, Record, RecordError};
pub use status::ReviewStatus;
pub use validate::{Issue, Rule};
pub use value::Value;
