//! Intake's HTML toolkit, shared by the supervisor dashboard (served by `intake-server`)
//! and the field app (`intake app`): page chrome, the interface's words in every
//! language, the one form-to-HTML renderer, bar charts and paging.
//!
//! Everything here is a pure function to [`maud::Markup`]: templates are checked when
//! the crate builds and every spliced string is escaped, so user content cannot become
//! markup. No I/O, no JavaScript, no asset fetched at run time (the stylesheet is
//! inlined). Routes, cookies and CSRF checking belong to the servers that use it.

pub mod chart;
pub mod clock;
pub mod form;
pub mod i18n;
pub mod layout;
pub mod table;
pub mod translit;
pub mod url;

pub use chart::{Cell, bars};
pub use form::{field_input, field_value, label};
pub use i18n::{Msg, t, tf, tn};
pub use layout::{Chrome, NavItem, csrf_input, page, page_with_head};
pub use maud::{Markup, PreEscaped, html};
