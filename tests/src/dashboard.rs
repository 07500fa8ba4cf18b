//! Speaking to the dashboard over real HTTP as a browser would without JavaScript:
//! cookies kept, forms posted with their CSRF token and their one-time token (`once`),
//! redirects not followed (so a test sees where a form sends it). [`Dashboard::supervisor`] adds a supervisor, sets her
//! password with a one-time code through the page, and signs her in.

use intake_server::admin;
use intake_server::storage::{Role, Storage};
use reqwest::blocking::Client;

use crate::TestServer;

/// A password good enough for the strength check.
pub const PASSWORD: &str = "lumi i bardhë në mal 2026";

/// One page as it came back.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    /// `Location`, for redirects.
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The CSRF token of the page's first form (`name="csrf" value="…"`).
    pub fn csrf(&self) -> String {
        hidden(&self.body, "csrf").expect("the page has a form with a CSRF token")
    }

    /// The one-time token (`once`) of the page's first form posting to `action`, as a
    /// browser sends it; `None` when that form has none.
    pub fn once(&self, action: &str) -> Option<String> {
        let at = self.body.find(&format!("action=\"{action}\""))?;
        let form = &self.body[at..];
        let form = &form[..form.find("</form>").unwrap_or(form.len())];
        hidden(form, "once")
    }
}

/// The value of the first hidden input named `name`.
pub fn hidden(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &body[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

/// A browser without JavaScript, signed in or not.
pub struct Dashboard {
    pub url: String,
    pub http: Client,
}

impl Dashboard {
    pub fn new(server: &TestServer) -> Dashboard {
        Dashboard::at(&server.url)
    }

    /// A browser for the server at `url` (any backend: `pg_server::PgServer` too).
    pub fn at(url: &str) -> Dashboard {
        Dashboard {
            url: url.to_string(),
            http: Client::builder()
                .no_proxy()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
        }
    }

    fn page(resp: reqwest::blocking::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Page {
            status,
            location,
            body: resp.text().unwrap_or_default(),
            headers,
        }
    }

    pub fn get(&self, path: &str) -> Page {
        Dashboard::page(
            self.http
                .get(format!("{}{path}", self.url))
                .send()
                .expect("GET"),
        )
    }

    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Dashboard::page(
            self.http
                .post(format!("{}{path}", self.url))
                .form(form)
                .send()
                .expect("POST"),
        )
    }

    /// Sets a password with a one-time code through `/set-password`.
    pub fn set_password(&self, code: &str, password: &str) -> Page {
        self.post(
            "/set-password",
            &[("code", code), ("password", password), ("again", password)],
        )
    }

    /// Signs in through `/login` (with the form's own anti-forgery value).
    pub fn sign_in(&self, name: &str, password: &str) -> Page {
        let form = self.get("/login");
        let pre = hidden(&form.body, "pre").expect("the sign-in form's token");
        self.post(
            "/login",
            &[
                ("pre", pre.as_str()),
                ("next", "/"),
                ("username", name),
                ("password", password),
            ],
        )
    }

    /// A new signed-in supervisor of `team`.
    pub fn supervisor(server: &TestServer, name: &str, team: &str) -> Dashboard {
        server.add_user(name, Role::Supervisor, Some(team));
        Dashboard::with_password(server, name)
    }

    /// Signs in an existing supervisor or admin after setting her password.
    pub fn with_password(server: &TestServer, name: &str) -> Dashboard {
        Dashboard::with_password_at(&server.url, server.storage.as_ref(), name)
    }

    /// [`Dashboard::with_password`] on the server at `url` over `storage`.
    pub fn with_password_at(url: &str, storage: &dyn Storage, name: &str) -> Dashboard {
        let code = admin::sign_in_code(storage, name, 60)
            .expect("a sign-in code")
            .code;
        let d = Dashboard::at(url);
        let set = d.set_password(&code, PASSWORD);
        assert_eq!(set.status, 200, "{}", set.body);
        let signed = d.sign_in(name, PASSWORD);
        assert_eq!(signed.status, 303, "{}", signed.body);
        d
    }

    /// Posts a form of the page at `page_path`, with that page's CSRF token and the
    /// form's one-time token (a fresh page, so a fresh token: each call is a new form).
    pub fn submit(&self, page_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        self.submit_form(&self.form(page_path, action), fields)
    }

    /// The tokens of the form posting to `action` on the page at `page_path`, loaded
    /// now: (CSRF token, one-time token). Posting them twice is the same form posted
    /// twice.
    pub fn form(&self, page_path: &str, action: &str) -> Form {
        let page = self.get(page_path);
        Form {
            action: action.to_string(),
            csrf: page.csrf(),
            once: page.once(action),
        }
    }

    /// Posts a form whose tokens [`Dashboard::form`] took.
    pub fn submit_form(&self, form: &Form, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", form.csrf.as_str())];
        if let Some(once) = &form.once {
            all.push(("once", once.as_str()));
        }
        all.extend_from_slice(fields);
        self.post(&form.action, &all)
    }
}

/// A rendered form's tokens, to post it (again).
#[derive(Clone, Debug)]
pub struct Form {
    pub action: String,
    pub csrf: String,
    pub once: Option<String>,
}
