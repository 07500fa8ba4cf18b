//! The forms this build knows: every file in `schemas/`, embedded at build time so a
//! device needs no network to open a record, whatever version it was started with.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use super::{Form, FormError};

/// Every schema file shipped with this build, by file name.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "intake.v1.json",
        include_str!("../../../schemas/intake.v1.json"),
    ),
    (
        "followup.v1.json",
        include_str!("../../../schemas/followup.v1.json"),
    ),
];

/// Forms by (id, version). Old versions stay so old drafts still open.
#[derive(Clone, Debug, Default)]
pub struct FormRegistry {
    forms: BTreeMap<(String, u32), Arc<Form>>,
}

impl FormRegistry {
    /// The forms embedded in this build (parsed once per process).
    pub fn builtin() -> &'static FormRegistry {
        static BUILTIN: OnceLock<FormRegistry> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            let mut r = FormRegistry::default();
            for (name, text) in EMBEDDED {
                // A broken embedded schema is a build defect caught by the schema test.
                let form = Form::from_json(text)
                    .unwrap_or_else(|e| panic!("embedded schema {name} is invalid: {e}"));
                r.insert(form);
            }
            r
        })
    }

    pub fn insert(&mut self, form: Form) {
        self.forms
            .insert((form.id.clone(), form.version), Arc::new(form));
    }

    /// Every form version, by id then version.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Form>> {
        self.forms.values()
    }

    /// A given version of a form.
    pub fn get(&self, id: &str, version: u32) -> Result<Arc<Form>, FormError> {
        self.forms
            .get(&(id.to_string(), version))
            .cloned()
            .ok_or_else(|| FormError::Unknown {
                form: id.to_string(),
                version,
            })
    }

    /// The newest version of a form: what new records are started with.
    pub fn latest(&self, id: &str) -> Result<Arc<Form>, FormError> {
        self.forms
            .range((id.to_string(), 0)..=(id.to_string(), u32::MAX))
            .next_back()
            .map(|(_, f)| f.clone())
            .ok_or_else(|| FormError::Unknown {
                form: id.to_string(),
                version: 0,
            })
    }
}
