//! Who may do what, end to end against the real server: every endpoint × every kind of
//! caller × every kind of target, from a table of expected outcomes. Someone else's
//! record answers exactly like a missing one (same status, same body); admins manage
//! users and devices but see no records; a revoked device, a disabled user or no token
//! get 401 everywhere, from the very next request. Changes that touch protected fields
//! (review outcome, assignment, review note, record structure) or carry another
//! device's actor are refused and leave the stored record exactly as it was; a
//! supervisor's review and reassignment go through, and access follows the assignment.

use chrono::Utc;
use intake_server::admin;
use intake_server::storage::Role;
use intake_shared::protocol::{Outcome, RecordChanges, Rejection};
use intake_shared::record::Identity;
use intake_shared::{FormRegistry, Record, RecordId, ReviewStatus, Value};
use intake_tests::craft::{
    PAST_THE_END, identity, load, new_record, push, push_of, raw_change, record_id, request, wire,
};
use intake_tests::{Enrolled, TestServer};
use serde_json::json;

fn start() -> TestServer {
    // The table covers the admin API too.
    TestServer::start_with_admin_api()
}

/// An edit of (a copy of) `r` by `who`, pushed by `token`.
fn push_edit(
    server: &TestServer,
    token: &str,
    r: &Record,
    who: &Identity,
    edit: impl FnOnce(&mut intake_shared::Edit<'_>) -> Result<(), intake_shared::RecordError>,
) -> Outcome {
    let mut copy = r.clone();
    copy.set_identity(who);
    let before = copy.heads();
    copy.edit(Utc::now(), edit).unwrap();
    push(server, token, push_of(&mut copy, &before))
}

fn rejected(outcome: &Outcome) -> Option<Rejection> {
    match outcome {
        Outcome::Stored => None,
        Outcome::Rejected { reason, .. } => Some(*reason),
    }
}

/// GET with the raw body, so that two answers can be compared byte for byte.
fn get_raw(server: &TestServer, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = server.http().get(format!("{}{path}", server.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

// ---------------------------------------------------------------------------------
// The matrix.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// Paralegal in team prizren; owns `Target::OwnOfA`.
    A,
    /// Paralegal in team prizren; assigned `Target::AssignedToB`.
    B,
    /// Paralegal in team gjilan; owns `Target::OthersOfC`.
    C,
    /// Supervisor of team prizren.
    SupervisorOfA,
    /// Supervisor of team gjilan.
    OtherSupervisor,
    Admin,
    /// A's second phone, revoked.
    RevokedDevice,
    /// A paralegal of team prizren whose user was disabled.
    DisabledUser,
    /// A's third phone, revoked with a wipe order (lost): 401 everywhere, but it may
    /// report its store wiped.
    WipeOrdered,
    NoToken,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// A record A created.
    OwnOfA,
    /// A record C (another team) created.
    OthersOfC,
    /// A record A's supervisor created and assigned to B.
    AssignedToB,
    /// A record id nobody has used (for pushes: a new record with a fresh id).
    Missing,
    /// An existing throwaway user or device, made for this cell (admin endpoints).
    Throwaway,
    /// An endpoint without a target.
    None,
}

/// Which records each caller may see and write: A's own, C's, the one assigned to B.
/// `None`: the caller is not authenticated at all (401 on every authenticated endpoint).
/// A missing record is visible to nobody; every authenticated non-admin may create one.
#[rustfmt::skip] // A table reads best aligned.
const VISIBLE: [(Caller, Option<[bool; 3]>); 10] = [
    //                         A's own  C's    assigned to B
    (Caller::A,               Some([true,  false, false])),
    (Caller::B,               Some([false, false, true ])),
    (Caller::C,               Some([false, true,  false])),
    (Caller::SupervisorOfA,   Some([true,  false, true ])),
    (Caller::OtherSupervisor, Some([false, true,  false])),
    (Caller::Admin,           Some([false, false, false])),
    (Caller::RevokedDevice,   None),
    (Caller::DisabledUser,    None),
    (Caller::WipeOrdered,     None),
    (Caller::NoToken,         None),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Health,
    OpenApi,
    Enroll,
    Me,
    ListRecords,
    GetRecord,
    SyncPush,
    SyncPullWanted,
    SyncPullFromZero,
    AdminListUsers,
    AdminAddUser,
    AdminNewCode,
    AdminDisableUser,
    AdminListDevices,
    AdminRevokeDevice,
    Export,
    Summary,
    /// Rotating the caller's token: later cells use the new token.
    Token,
    Wiped,
}

impl Endpoint {
    const ALL: [Endpoint; 19] = [
        Endpoint::Health,
        Endpoint::OpenApi,
        Endpoint::Me,
        Endpoint::ListRecords,
        Endpoint::GetRecord,
        Endpoint::SyncPush,
        Endpoint::SyncPullWanted,
        Endpoint::SyncPullFromZero,
        Endpoint::AdminListUsers,
        Endpoint::AdminAddUser,
        Endpoint::AdminNewCode,
        Endpoint::AdminDisableUser,
        Endpoint::AdminListDevices,
        Endpoint::AdminRevokeDevice,
        Endpoint::Export,
        Endpoint::Summary,
        Endpoint::Token,
        Endpoint::Wiped,
        // Last: its wrong codes use up the address's failed attempts (10 per 10
        // minutes), after which the throwaway enrolments of other cells are refused.
        Endpoint::Enroll,
    ];

    /// The route an endpoint calls, as the server's route list names it (the pulls
    /// are the same route as the push).
    fn route(self) -> (&'static str, &'static str) {
        match self {
            Endpoint::Health => ("get", "/health"),
            Endpoint::OpenApi => ("get", "/openapi.json"),
            Endpoint::Enroll => ("post", "/v1/enroll"),
            Endpoint::Me => ("get", "/v1/me"),
            Endpoint::ListRecords => ("get", "/v1/records"),
            Endpoint::GetRecord => ("get", "/v1/records/{id}"),
            Endpoint::SyncPush | Endpoint::SyncPullWanted | Endpoint::SyncPullFromZero => {
                ("post", "/v1/sync")
            }
            Endpoint::AdminListUsers => ("get", "/v1/admin/users"),
            Endpoint::AdminAddUser => ("post", "/v1/admin/users"),
            Endpoint::AdminNewCode => ("post", "/v1/admin/users/{name}/code"),
            Endpoint::AdminDisableUser => ("post", "/v1/admin/users/{name}/disable"),
            Endpoint::AdminListDevices => ("get", "/v1/admin/devices"),
            Endpoint::AdminRevokeDevice => ("post", "/v1/admin/devices/{id}/revoke"),
            Endpoint::Export => ("get", "/v1/export"),
            Endpoint::Summary => ("get", "/v1/summary"),
            Endpoint::Token => ("post", "/v1/token"),
            Endpoint::Wiped => ("post", "/v1/wiped"),
        }
    }

    fn targets(self) -> &'static [Target] {
        const RECORDS: &[Target] = &[
            Target::OwnOfA,
            Target::OthersOfC,
            Target::AssignedToB,
            Target::Missing,
        ];
        match self {
            Endpoint::ListRecords
            | Endpoint::Export
            | Endpoint::GetRecord
            | Endpoint::SyncPush
            | Endpoint::SyncPullWanted
            | Endpoint::SyncPullFromZero => RECORDS,
            Endpoint::AdminNewCode | Endpoint::AdminDisableUser | Endpoint::AdminRevokeDevice => {
                &[Target::Throwaway, Target::Missing]
            }
            _ => &[Target::None],
        }
    }
}

/// What a cell must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Exactly this status.
    Status(u16),
    /// A read: the record is shown (200, or in the list or the page), or the answer is
    /// exactly the one for a missing record.
    Read { visible: bool },
    /// A push answered 200 with this outcome (`None`: stored).
    Push(Option<Rejection>),
}

fn expected(caller: Caller, endpoint: Endpoint, target: Target) -> Expect {
    let rights = VISIBLE.iter().find(|(c, _)| *c == caller).unwrap().1;
    match endpoint {
        // Public.
        Endpoint::Health | Endpoint::OpenApi => return Expect::Status(200),
        // A wrong code opens nothing, whoever sends it.
        Endpoint::Enroll => return Expect::Status(401),
        // Only a device under a wipe order may report its store wiped; any other
        // token (live or revoked) is refused like a revoked one.
        Endpoint::Wiped => {
            return Expect::Status(if caller == Caller::WipeOrdered {
                200
            } else {
                401
            });
        }
        _ => {}
    }
    let Some(rights) = rights else {
        return Expect::Status(401);
    };
    let visible = match target {
        Target::OwnOfA => rights[0],
        Target::OthersOfC => rights[1],
        Target::AssignedToB => rights[2],
        Target::Missing | Target::Throwaway | Target::None => false,
    };
    let is_admin = caller == Caller::Admin;
    match endpoint {
        Endpoint::Health | Endpoint::OpenApi | Endpoint::Enroll | Endpoint::Wiped => {
            unreachable!()
        }
        // Any enrolled device may rotate its token, and see the summary of what it
        // may see (an admin: nothing).
        Endpoint::Me | Endpoint::Token | Endpoint::Summary => Expect::Status(200),
        // An export holds what the caller may read (non-sensitive fields: every role).
        Endpoint::Export => Expect::Read { visible },
        Endpoint::ListRecords
        | Endpoint::GetRecord
        | Endpoint::SyncPullWanted
        | Endpoint::SyncPullFromZero => Expect::Read { visible },
        Endpoint::SyncPush => {
            let may = visible || (target == Target::Missing && !is_admin);
            Expect::Push((!may).then_some(Rejection::Forbidden))
        }
        _ if !is_admin => Expect::Status(403),
        Endpoint::AdminAddUser => Expect::Status(201),
        Endpoint::AdminNewCode | Endpoint::AdminDisableUser | Endpoint::AdminRevokeDevice => {
            Expect::Status(if target == Target::Missing { 404 } else { 200 })
        }
        Endpoint::AdminListUsers | Endpoint::AdminListDevices => Expect::Status(200),
    }
}

struct World {
    server: TestServer,
    callers: Vec<(Caller, Option<Enrolled>, &'static str)>,
    own_of_a: Record,
    others_of_c: Record,
    assigned_to_b: Record,
    /// An id no record has.
    missing: RecordId,
    /// Counts records, users and sessions made by cells, so each is fresh.
    fresh: u32,
}

impl World {
    fn build() -> World {
        let server = start();
        let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
        let b = server.user_device("blerta", Role::Paralegal, Some("prizren"));
        let c = server.user_device("cvetko", Role::Paralegal, Some("gjilan"));
        let sup_a = server.user_device("shpresa", Role::Supervisor, Some("prizren"));
        let sup_c = server.user_device("sanja", Role::Supervisor, Some("gjilan"));
        let admin = server.enroll(&server.admin_code, [0xad; 16]);
        let disabled = server.user_device("dardan", Role::Paralegal, Some("prizren"));
        let code = admin::new_code(server.storage.as_ref(), "arta", 60)
            .unwrap()
            .enrolment_code;
        let revoked = server.enroll(&code, [0xa2; 16]);
        let code = admin::new_code(server.storage.as_ref(), "arta", 60)
            .unwrap()
            .enrolment_code;
        let lost = server.enroll(&code, [0xa3; 16]);
        assert!(
            admin::revoke_device(server.storage.as_ref(), lost.device_id, true, Utc::now())
                .unwrap()
        );

        let mut own_of_a = new_record(&identity(&a, "arta", 1), 1);
        assert_eq!(
            push(&server, &a.token, push_of(&mut own_of_a, &[])),
            Outcome::Stored
        );
        let mut others_of_c = new_record(&identity(&c, "cvetko", 1), 2);
        assert_eq!(
            push(&server, &c.token, push_of(&mut others_of_c, &[])),
            Outcome::Stored
        );
        let mut assigned_to_b = new_record(&identity(&sup_a, "shpresa", 1), 3);
        assigned_to_b
            .edit(Utc::now(), |e| e.assign("blerta"))
            .unwrap();
        assert_eq!(
            push(&server, &sup_a.token, push_of(&mut assigned_to_b, &[])),
            Outcome::Stored
        );

        // Revoke and disable over the admin API, as an admin would.
        let (status, _) = server.post(
            &format!("/v1/admin/devices/{}/revoke", revoked.device_id),
            Some(&admin.token),
            &json!({}),
        );
        assert_eq!(status, 200);
        let (status, _) = server.post(
            "/v1/admin/users/dardan/disable",
            Some(&admin.token),
            &json!({}),
        );
        assert_eq!(status, 200);

        World {
            callers: vec![
                (Caller::A, Some(a), "arta"),
                (Caller::B, Some(b), "blerta"),
                (Caller::C, Some(c), "cvetko"),
                (Caller::SupervisorOfA, Some(sup_a), "shpresa"),
                (Caller::OtherSupervisor, Some(sup_c), "sanja"),
                (Caller::Admin, Some(admin), "admin"),
                (Caller::RevokedDevice, Some(revoked), "arta"),
                (Caller::DisabledUser, Some(disabled), "dardan"),
                (Caller::WipeOrdered, Some(lost), "arta"),
                (Caller::NoToken, None, "nobody"),
            ],
            server,
            own_of_a,
            others_of_c,
            assigned_to_b,
            missing: record_id(999),
            fresh: 100,
        }
    }

    fn record(&self, target: Target) -> Option<&Record> {
        match target {
            Target::OwnOfA => Some(&self.own_of_a),
            Target::OthersOfC => Some(&self.others_of_c),
            Target::AssignedToB => Some(&self.assigned_to_b),
            _ => None,
        }
    }

    fn target_id(&self, target: Target) -> RecordId {
        self.record(target).map_or(self.missing, Record::id)
    }

    fn next(&mut self) -> u32 {
        self.fresh += 1;
        self.fresh
    }

    /// Runs one cell; `Err` describes how the answer differs from `expect`.
    fn check(
        &mut self,
        caller: usize,
        endpoint: Endpoint,
        target: Target,
        expect: Expect,
    ) -> Result<(), String> {
        let (_, dev, name) = self.callers[caller].clone();
        let token = dev.as_ref().map(|d| d.token.as_str());
        let server = &self.server;
        let id = self.target_id(target);
        let status_is = |got: u16, body: &dyn std::fmt::Display| match expect {
            Expect::Status(want) if want == got => Ok(()),
            _ => Err(format!("expected {expect:?}, got {got}: {body}")),
        };
        match endpoint {
            Endpoint::Health => {
                let (s, body) = server.get("/health", token);
                status_is(s, &body)
            }
            Endpoint::OpenApi => {
                let (s, body) = get_raw(server, "/openapi.json", token);
                status_is(s, &body)?;
                if !body.contains("\"openapi\"") {
                    return Err(format!("not the document: {body:.80}"));
                }
                Ok(())
            }
            Endpoint::Enroll => {
                let devices = server.storage.devices().unwrap().len();
                let (s, body) = server.post(
                    "/v1/enroll",
                    token,
                    &json!({
                        "code": format!("WRONG-{caller}-CODE"),
                        "actor": "ee".repeat(16),
                        "label": "guess",
                    }),
                );
                status_is(s, &body)?;
                if server.storage.devices().unwrap().len() != devices {
                    return Err("a device was enrolled".into());
                }
                Ok(())
            }
            Endpoint::Export => {
                let (s, body) = server.get("/v1/export?format=json", token);
                let Expect::Read { visible } = expect else {
                    return status_is(s, &body);
                };
                let listed = body
                    .as_array()
                    .ok_or_else(|| format!("{s}: {body}"))?
                    .iter()
                    .any(|r| r["id"] == id.to_string());
                if s != 200 || listed != visible {
                    return Err(format!("{s}, exported: {listed}"));
                }
                Ok(())
            }
            Endpoint::Summary => {
                let (s, body) = server.get("/v1/summary", token);
                status_is(s, &body)?;
                if s == 200 {
                    // It counts exactly the records the caller may list.
                    let (_, list) = server.get("/v1/records", token);
                    let listed = list.as_array().map_or(0, Vec::len) as u64;
                    if body["total"].as_u64() != Some(listed) {
                        return Err(format!("total {} of {listed} listed", body["total"]));
                    }
                }
                Ok(())
            }
            Endpoint::Token => {
                let (s, body) = server.post("/v1/token", token, &json!({}));
                status_is(s, &body)?;
                if s != 200 {
                    return Ok(());
                }
                let new = body["token"]
                    .as_str()
                    .ok_or_else(|| format!("no token: {body}"))?
                    .to_string();
                // The new token works (and its first use ends the old one's grace):
                // later cells of this caller use it.
                let (me, who) = server.get("/v1/me", Some(&new));
                if me != 200 || who["user"] != name {
                    return Err(format!("the new token: {me} {who}"));
                }
                let old = server.get("/v1/me", token).0;
                if old != 401 {
                    return Err(format!("the old token after the new one was used: {old}"));
                }
                if let Some(d) = self.callers[caller].1.as_mut() {
                    d.token = new;
                }
                Ok(())
            }
            Endpoint::Wiped => {
                let (s, body) = server.post("/v1/wiped", token, &json!({}));
                status_is(s, &body)?;
                if s == 200 && body["wiped"] != true {
                    return Err(format!("{body}"));
                }
                Ok(())
            }
            Endpoint::Me => {
                let (s, body) = server.get("/v1/me", token);
                status_is(s, &body)?;
                if s == 200 && body["user"] != name {
                    return Err(format!("/v1/me names {}", body["user"]));
                }
                Ok(())
            }
            Endpoint::ListRecords => {
                let (s, body) = server.get("/v1/records", token);
                let Expect::Read { visible } = expect else {
                    return status_is(s, &body);
                };
                let listed = body
                    .as_array()
                    .ok_or_else(|| format!("{s}: {body}"))?
                    .iter()
                    .any(|r| r["id"] == id.to_string());
                if s != 200 || listed != visible {
                    return Err(format!("{s}, listed: {listed}"));
                }
                Ok(())
            }
            Endpoint::GetRecord => {
                let (s, body) = get_raw(server, &format!("/v1/records/{id}"), token);
                let Expect::Read { visible } = expect else {
                    return status_is(s, &body);
                };
                if visible {
                    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    if s != 200 || json["id"] != id.to_string() {
                        return Err(format!("{s}: {body}"));
                    }
                    return Ok(());
                }
                let missing = get_raw(server, &format!("/v1/records/{}", self.missing), token);
                if (s, &body) != (missing.0, &missing.1) || s != 404 {
                    return Err(format!(
                        "answered {s} {body}; a missing record answers {} {}",
                        missing.0, missing.1
                    ));
                }
                Ok(())
            }
            Endpoint::SyncPullWanted | Endpoint::SyncPullFromZero => {
                let (cursor, want) = if endpoint == Endpoint::SyncPullWanted {
                    (PAST_THE_END, vec![wire(id)])
                } else {
                    (0, vec![])
                };
                let reply = server.sync(token, &request(cursor, vec![], want));
                let Expect::Read { visible } = expect else {
                    return status_is(reply.status, &String::from_utf8_lossy(&reply.body));
                };
                let resp = reply.response.ok_or(format!("status {}", reply.status))?;
                let shown = resp.docs.iter().any(|d| d.record == wire(id));
                if shown != visible {
                    return Err(format!("document shown: {shown}"));
                }
                if !visible && endpoint == Endpoint::SyncPullWanted {
                    // Asking for someone else's record answers like asking for none:
                    // both are named unavailable, and nothing else differs.
                    let missing = server.sync(
                        token,
                        &request(PAST_THE_END, vec![], vec![wire(self.missing)]),
                    );
                    let as_asked = |mut r: intake_shared::protocol::SyncResponse, asked| {
                        if r.unavailable == vec![asked] {
                            r.unavailable = vec![[0; 16]];
                        }
                        r
                    };
                    let missing_resp = missing
                        .response
                        .clone()
                        .map(|r| as_asked(r, wire(self.missing)));
                    if missing_resp != Some(as_asked(resp.clone(), wire(id))) {
                        return Err(format!(
                            "answered {resp:?}; a missing record answers {:?}",
                            missing.response
                        ));
                    }
                }
                Ok(())
            }
            Endpoint::SyncPush => {
                let n = self.next();
                let actor = dev.clone().unwrap_or(Enrolled {
                    token: String::new(),
                    device_id: 0,
                    actor: [0x77; 16],
                });
                let who = identity(&actor, name, n);
                let mut copy = match self.record(target) {
                    Some(r) => r.clone(),
                    None => new_record(&who, 1000 + u64::from(n)),
                };
                copy.set_identity(&who);
                let before = if target == Target::Missing {
                    vec![]
                } else {
                    copy.heads()
                };
                copy.edit(Utc::now(), |e| {
                    e.set("village", Value::Text(format!("cell {n}")))
                })
                .unwrap();
                let pushed = push_of(&mut copy, &before);
                let stored_before = self.server.storage.record(copy.id()).unwrap();
                let reply = self
                    .server
                    .sync(token, &request(PAST_THE_END, vec![pushed], vec![]));
                let stored_after = self.server.storage.record(copy.id()).unwrap();
                let Expect::Push(want) = expect else {
                    return status_is(reply.status, &String::from_utf8_lossy(&reply.body));
                };
                let resp = reply.response.ok_or(format!("status {}", reply.status))?;
                let got = rejected(&resp.results[0].outcome);
                if got != want {
                    return Err(format!("outcome {:?}", resp.results[0].outcome));
                }
                let unchanged = stored_before.map(|s| s.heads) == stored_after.map(|s| s.heads);
                if want.is_some() != unchanged {
                    return Err(format!("stored record unchanged: {unchanged}"));
                }
                Ok(())
            }
            Endpoint::AdminListUsers | Endpoint::AdminListDevices => {
                let path = if endpoint == Endpoint::AdminListUsers {
                    "/v1/admin/users"
                } else {
                    "/v1/admin/devices"
                };
                let (s, body) = server.get(path, token);
                status_is(s, &body)?;
                if s == 200 && body.as_array().is_none_or(|a| a.is_empty()) {
                    return Err(format!("an empty list: {body}"));
                }
                Ok(())
            }
            Endpoint::AdminAddUser => {
                let user = format!("new-{}", self.next());
                let (s, body) = self.server.post(
                    "/v1/admin/users",
                    token,
                    &json!({ "name": user, "role": "paralegal", "team": "prizren" }),
                );
                status_is(s, &body)?;
                let exists = self.server.storage.user(&user).unwrap().is_some();
                if exists != (s == 201) || (s == 201 && body["enrolment_code"].is_null()) {
                    return Err(format!("user created: {exists}; {body}"));
                }
                Ok(())
            }
            Endpoint::AdminNewCode | Endpoint::AdminDisableUser => {
                let user = format!("tmp-{}", self.next());
                if target == Target::Throwaway {
                    self.server
                        .add_user(&user, Role::Paralegal, Some("prizren"));
                }
                let action = if endpoint == Endpoint::AdminNewCode {
                    "code"
                } else {
                    "disable"
                };
                let (s, body) = self.server.post(
                    &format!("/v1/admin/users/{user}/{action}"),
                    token,
                    &json!({}),
                );
                status_is(s, &body)?;
                let disabled = self
                    .server
                    .storage
                    .user(&user)
                    .unwrap()
                    .is_some_and(|u| u.disabled);
                if disabled != (endpoint == Endpoint::AdminDisableUser && s == 200) {
                    return Err(format!("user disabled: {disabled}"));
                }
                Ok(())
            }
            Endpoint::AdminRevokeDevice => {
                let n = self.next();
                let device = (target == Target::Throwaway).then(|| {
                    let user = format!("tmp-{n}");
                    let code = self
                        .server
                        .add_user(&user, Role::Paralegal, Some("prizren"));
                    let mut actor = [0xde; 16];
                    actor[..4].copy_from_slice(&n.to_be_bytes());
                    self.server.enroll(&code, actor)
                });
                let device_id = device.as_ref().map_or(987_654, |d| d.device_id);
                let (s, body) = self.server.post(
                    &format!("/v1/admin/devices/{device_id}/revoke"),
                    token,
                    &json!({}),
                );
                status_is(s, &body)?;
                if let Some(d) = device {
                    let works = self.server.get("/v1/me", Some(&d.token)).0 == 200;
                    if works == (s == 200) {
                        return Err(format!("the device works after the call: {works}"));
                    }
                }
                Ok(())
            }
        }
    }
}

#[test]
fn every_endpoint_answers_every_caller_as_the_table_says() {
    let mut world = World::build();
    let mut cells = 0;
    let mut failures = Vec::new();
    for endpoint in Endpoint::ALL {
        for caller in 0..world.callers.len() {
            for &target in endpoint.targets() {
                let who = world.callers[caller].0;
                let expect = expected(who, endpoint, target);
                cells += 1;
                if let Err(e) = world.check(caller, endpoint, target, expect) {
                    failures.push(format!("{endpoint:?} by {who:?} on {target:?}: {e}"));
                }
            }
        }
    }
    eprintln!(
        "authorization matrix: {cells} cells checked, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(cells >= 360, "the matrix covers every cell ({cells})");
}

/// Every route the server registers (its one route list) is an endpoint of the
/// matrix: a new route fails here until the table says who may call it.
#[test]
fn every_route_of_the_server_is_in_the_matrix() {
    let covered: Vec<(&str, &str)> = Endpoint::ALL.iter().map(|e| e.route()).collect();
    let missing: Vec<_> = intake_server::routes::ROUTES
        .iter()
        .filter(|r| !covered.contains(r))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the access matrix (decide who may call them): {missing:?}"
    );
    // And the matrix calls nothing the server does not list.
    let unknown: Vec<_> = covered
        .iter()
        .filter(|r| !intake_server::routes::ROUTES.contains(r))
        .collect();
    assert!(unknown.is_empty(), "matrix rows for no route: {unknown:?}");
}

// ---------------------------------------------------------------------------------
// Revocation.

#[test]
fn revoking_a_device_or_disabling_a_user_takes_effect_on_the_next_request() {
    let server = start();
    let admin = server.enroll(&server.admin_code, [0xad; 16]);
    let phone = server.user_device("ilir", Role::Paralegal, Some("prizren"));
    let code = admin::new_code(server.storage.as_ref(), "ilir", 60)
        .unwrap()
        .enrolment_code;
    let laptop = server.enroll(&code, [0x1a; 16]);
    let jeta = server.user_device("jeta", Role::Paralegal, Some("prizren"));
    let mut r = new_record(&identity(&phone, "ilir", 1), 1);
    let first = push_of(&mut r, &[]);
    let noop = request(PAST_THE_END, vec![], vec![]);

    assert_eq!(server.get("/v1/me", Some(&phone.token)).0, 200);
    assert_eq!(push(&server, &phone.token, first.clone()), Outcome::Stored);
    let (status, _) = server.post(
        &format!("/v1/admin/devices/{}/revoke", phone.device_id),
        Some(&admin.token),
        &json!({}),
    );
    assert_eq!(status, 200);
    let (status, body) = server.get("/v1/me", Some(&phone.token));
    assert_eq!((status, body["error"].as_str()), (401, Some("revoked")));
    assert_eq!(server.sync(Some(&phone.token), &noop).status, 401);
    assert_eq!(
        server
            .sync(Some(&phone.token), &request(0, vec![first], vec![]))
            .status,
        401
    );
    assert_eq!(
        server.get("/v1/me", Some(&laptop.token)).0,
        200,
        "the user's other device still works"
    );
    let (status, body) = server.get(&format!("/v1/records/{}", r.id()), Some(&laptop.token));
    assert_eq!((status, &body["id"]), (200, &json!(r.id().to_string())));

    assert_eq!(server.get("/v1/records", Some(&jeta.token)).0, 200);
    assert_eq!(server.sync(Some(&jeta.token), &noop).status, 200);
    let (status, _) = server.post(
        "/v1/admin/users/jeta/disable",
        Some(&admin.token),
        &json!({}),
    );
    assert_eq!(status, 200);
    let (status, body) = server.get("/v1/records", Some(&jeta.token));
    assert_eq!((status, body["error"].as_str()), (401, Some("revoked")));
    assert_eq!(server.sync(Some(&jeta.token), &noop).status, 401);
    // A disabled user cannot enrol a new device either.
    let (status, body) = server.post("/v1/admin/users/jeta/code", Some(&admin.token), &json!({}));
    assert_eq!(status, 200);
    let (status, _) = server.post(
        "/v1/enroll",
        None,
        &json!({ "code": body["enrolment_code"], "actor": hex::encode([0x1b; 16]) }),
    );
    assert_eq!(status, 401);
    assert_eq!(server.get("/v1/me", Some(&admin.token)).0, 200);
}

// ---------------------------------------------------------------------------------
// Protected fields and foreign actors.

#[test]
fn protected_fields_and_foreign_actors_are_refused_and_change_nothing() {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT};

    let server = start();
    let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
    let b = server.user_device("blerta", Role::Paralegal, Some("prizren"));
    let sup = server.user_device("shpresa", Role::Supervisor, Some("prizren"));
    let me = identity(&a, "arta", 1);
    let mut r = new_record(&me, 1);
    assert_eq!(
        push(&server, &a.token, push_of(&mut r, &[])),
        Outcome::Stored
    );
    let stored = server.storage.record(r.id()).unwrap().unwrap();

    type Case = (&'static str, Rejection, RecordChanges);
    let mut cases: Vec<Case> = Vec::new();
    let mut session = 10;
    let mut edit =
        |who: &Identity,
         f: &dyn Fn(&mut intake_shared::Edit<'_>) -> Result<(), intake_shared::RecordError>|
         -> RecordChanges {
            session += 1;
            let mut copy = r.clone();
            let mut who = who.clone();
            who.actor.truncate(16.min(who.actor.len()));
            who.actor.extend((session as u32).to_be_bytes());
            copy.set_identity(&who);
            let before = copy.heads();
            copy.edit(Utc::now(), f).unwrap();
            push_of(&mut copy, &before)
        };
    use Rejection::*;
    use ReviewStatus::*;
    cases.push((
        "status approved",
        ProtectedField,
        edit(&me, &|e| e.set_status(Approved, None)),
    ));
    cases.push((
        "status needs_changes",
        ProtectedField,
        edit(&me, &|e| e.set_status(NeedsChanges, None)),
    ));
    cases.push((
        "status closed",
        ProtectedField,
        edit(&me, &|e| e.set_status(Closed, None)),
    ));
    cases.push((
        "assigned_to herself",
        ProtectedField,
        edit(&me, &|e| e.assign("arta")),
    ));
    cases.push((
        "assigned_to a colleague",
        ProtectedField,
        edit(&me, &|e| e.assign("blerta")),
    ));
    cases.push((
        "review_note",
        ProtectedField,
        edit(&me, &|e| e.set_status(Submitted, Some("all fine"))),
    ));
    {
        // An allowed change followed by a forbidden one, in one push: neither is kept.
        let mut copy = r.clone();
        copy.set_identity(&identity(&a, "arta", 90));
        let before = copy.heads();
        copy.edit(Utc::now(), |e| e.set("village", Value::Text("Zhur".into())))
            .unwrap();
        copy.edit(Utc::now(), |e| e.set_status(Approved, None))
            .unwrap();
        cases.push((
            "an allowed change then a forbidden one",
            ProtectedField,
            push_of(&mut copy, &before),
        ));
    }
    let village = |e: &mut intake_shared::Edit<'_>| e.set("village", Value::Text("Zhur".into()));
    cases.push((
        "another paralegal's actor",
        ForeignActor,
        edit(&identity(&b, "arta", 0), &village),
    ));
    cases.push((
        "the supervisor's actor, approving",
        ForeignActor,
        edit(&identity(&sup, "shpresa", 0), &|e| {
            e.set_status(Approved, None)
        }),
    ));
    let short = Identity {
        actor: a.actor[..8].to_vec(),
        author: Some("arta".into()),
    };
    {
        let mut copy = r.clone();
        copy.set_identity(&short);
        let before = copy.heads();
        copy.edit(Utc::now(), village).unwrap();
        cases.push((
            "an actor shorter than a device's",
            ForeignActor,
            push_of(&mut copy, &before),
        ));
    }
    let raw =
        |n: u32,
         f: &dyn Fn(&mut automerge::AutoCommit) -> Result<(), automerge::AutomergeError>| {
            raw_change(&r, &identity(&a, "arta", 200 + n), f)
        };
    let other_id = record_id(2).to_string();
    cases.push((
        "rewriting fields",
        ProtectedField,
        raw(1, &|d| d.put_object(ROOT, "fields", ObjType::Map).map(drop)),
    ));
    cases.push((
        "rewriting id",
        ProtectedField,
        raw(2, &|d| d.put(ROOT, "id", other_id.as_str())),
    ));
    cases.push((
        "rewriting created_at",
        ProtectedField,
        raw(3, &|d| d.put(ROOT, "created_at", "2020-01-01T00:00:00Z")),
    ));
    cases.push((
        "rewriting form_version",
        ProtectedField,
        raw(4, &|d| d.put(ROOT, "form_version", 2_i64)),
    ));
    cases.push((
        "replacing comments",
        ProtectedField,
        raw(5, &|d| {
            d.put_object(ROOT, "comments", ObjType::List).map(drop)
        }),
    ));
    cases.push((
        "an unknown top-level key",
        ProtectedField,
        raw(6, &|d| d.put(ROOT, "owner", "arta")),
    ));
    cases.push((
        "deleting status",
        ProtectedField,
        raw(7, &|d| d.delete(ROOT, "status")),
    ));
    cases.push((
        "a status that is not one",
        ProtectedField,
        raw(8, &|d| d.put(ROOT, "status", "approved!")),
    ));
    cases.push((
        "deleting id",
        ProtectedField,
        raw(9, &|d| d.delete(ROOT, "id")),
    ));

    let mut failures = Vec::new();
    for (what, want, changes) in &cases {
        let outcome = push(&server, &a.token, changes.clone());
        let after = server.storage.record(r.id()).unwrap().unwrap();
        if rejected(&outcome) != Some(*want) {
            failures.push(format!("{what}: {outcome:?}"));
        }
        if after.heads != stored.heads || after.doc != stored.doc || after.meta != stored.meta {
            failures.push(format!("{what}: the stored record changed"));
        }
    }

    // New records: a forbidden or foreign creating push stores nothing at all.
    let mut new_cases: Vec<(&str, Rejection, RecordChanges, Vec<RecordId>)> = Vec::new();
    let mut approved = new_record(&identity(&a, "arta", 300), 301);
    approved
        .edit(Utc::now(), |e| e.set_status(Approved, None))
        .unwrap();
    new_cases.push((
        "a new record, approved",
        ProtectedField,
        push_of(&mut approved, &[]),
        vec![approved.id()],
    ));
    let mut assigned = new_record(&identity(&a, "arta", 302), 302);
    assigned.edit(Utc::now(), |e| e.assign("arta")).unwrap();
    new_cases.push((
        "a new record, assigned",
        ProtectedField,
        push_of(&mut assigned, &[]),
        vec![assigned.id()],
    ));
    let mut foreign = new_record(&identity(&b, "arta", 303), 303);
    new_cases.push((
        "a new record by another device's actor",
        ForeignActor,
        push_of(&mut foreign, &[]),
        vec![foreign.id()],
    ));
    let mut elsewhere = new_record(&identity(&a, "arta", 304), 304);
    let mut misfiled = push_of(&mut elsewhere, &[]);
    misfiled.record = wire(record_id(305));
    new_cases.push((
        "a new record under another id",
        ProtectedField,
        misfiled,
        vec![elsewhere.id(), record_id(305)],
    ));
    // The same, made by the creating change itself (one change, whose writes the
    // server reads off the record it builds).
    let form = FormRegistry::builtin().get("intake", 1).unwrap();
    let one_change = |n: u64,
                      f: &dyn Fn(
        &mut intake_shared::Edit<'_>,
    ) -> Result<(), intake_shared::RecordError>| {
        let mut r = Record::create_with(
            record_id(n),
            form.clone(),
            &identity(&a, "arta", 310),
            Utc::now(),
            |e| {
                e.set("full_name", Value::Text(format!("Person {n}")))?;
                e.set("consent_intake", Value::Bool(true))?;
                f(e)
            },
        )
        .unwrap();
        assert_eq!(r.change_count(), 1);
        (push_of(&mut r, &[]), vec![r.id()])
    };
    let (changes, ids) = one_change(311, &|e| e.set_status(Approved, None));
    new_cases.push((
        "created approved in one change",
        ProtectedField,
        changes,
        ids,
    ));
    let (changes, ids) = one_change(312, &|e| e.assign("arta"));
    new_cases.push((
        "created assigned in one change",
        ProtectedField,
        changes,
        ids,
    ));
    let (changes, ids) = one_change(313, &|e| e.set_status(Submitted, None));
    let mut elsewhere_one = changes;
    elsewhere_one.record = wire(record_id(314));
    new_cases.push((
        "created in one change under another id",
        ProtectedField,
        elsewhere_one,
        [ids, vec![record_id(314)]].concat(),
    ));
    {
        use automerge::{ActorId, AutoCommit, ObjType, ROOT, transaction::Transactable};
        let id = record_id(315);
        let mut doc =
            AutoCommit::new().with_actor(ActorId::from(identity(&a, "arta", 311).actor.as_slice()));
        doc.put(ROOT, "id", id.to_string()).unwrap();
        doc.put(ROOT, "form", "intake").unwrap();
        doc.put(ROOT, "form_version", 1_i64).unwrap();
        doc.put(ROOT, "status", "draft").unwrap();
        doc.put_object(ROOT, "fields", ObjType::Map).unwrap();
        doc.put(ROOT, "owner", "arta").unwrap();
        doc.commit();
        new_cases.push((
            "created in one change with an unknown top-level key",
            ProtectedField,
            RecordChanges {
                record: wire(id),
                changes: vec![doc.save_after(&[])],
            },
            vec![id],
        ));
    }
    for (what, want, changes, ids) in &new_cases {
        let outcome = push(&server, &a.token, changes.clone());
        if rejected(&outcome) != Some(*want) {
            failures.push(format!("{what}: {outcome:?}"));
        }
        for id in ids {
            if server.storage.record(*id).unwrap().is_some() {
                failures.push(format!("{what}: something was stored"));
            }
        }
    }
    let refused = cases.len() + new_cases.len();
    eprintln!(
        "protected fields and foreign actors: {refused} pushes, {} refused with the right reason and nothing stored",
        refused - failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");

    // The record still takes ordinary edits, and the supervisor may set what A may not.
    assert_eq!(
        push_edit(&server, &a.token, &r, &identity(&a, "arta", 400), |e| e
            .set_status(Submitted, None)),
        Outcome::Stored
    );
    let mut theirs = load(&server, &sup.token, r.id());
    for (n, edit) in [
        &(|e: &mut intake_shared::Edit<'_>| e.set_status(NeedsChanges, Some("re-ask consent")))
            as &dyn Fn(&mut intake_shared::Edit<'_>) -> Result<(), intake_shared::RecordError>,
        &|e| e.set_status(Approved, None),
        &|e| e.set_status(Closed, None),
        &|e| e.assign("blerta"),
    ]
    .into_iter()
    .enumerate()
    {
        theirs.set_identity(&identity(&sup, "shpresa", 500 + n as u32));
        let before = theirs.heads();
        theirs.edit(Utc::now(), edit).unwrap();
        assert_eq!(
            push(&server, &sup.token, push_of(&mut theirs, &before)),
            Outcome::Stored,
            "the supervisor's change {n}"
        );
    }
    let (_, json) = server.get(&format!("/v1/records/{}", r.id()), Some(&sup.token));
    assert_eq!(json["status"], "closed");
    assert_eq!(json["assigned_to"], "blerta");
}

// ---------------------------------------------------------------------------------
// Review and reassignment.

#[test]
fn a_reassigned_record_moves_from_one_paralegal_to_the_other() {
    let server = start();
    let a = server.user_device("arta", Role::Paralegal, Some("prizren"));
    let b = server.user_device("blerta", Role::Paralegal, Some("prizren"));
    let sup = server.user_device("shpresa", Role::Supervisor, Some("prizren"));
    let missing = format!("/v1/records/{}", record_id(999));

    // The supervisor opens a case and assigns it to A.
    let mut x = new_record(&identity(&sup, "shpresa", 1), 1);
    x.edit(Utc::now(), |e| e.assign("arta")).unwrap();
    assert_eq!(
        push(&server, &sup.token, push_of(&mut x, &[])),
        Outcome::Stored
    );
    let path = format!("/v1/records/{}", x.id());
    assert_eq!(server.get(&path, Some(&a.token)).0, 200);
    assert_eq!(server.get(&path, Some(&b.token)).0, 404);
    let first = server
        .sync(Some(&a.token), &request(0, vec![], vec![]))
        .response
        .unwrap();
    assert!(first.docs.iter().any(|d| d.record == wire(x.id())));
    // A works on it.
    assert_eq!(
        push_edit(&server, &a.token, &x, &identity(&a, "arta", 2), |e| e
            .set("village", Value::Text("Zhur".into()))),
        Outcome::Stored
    );

    // A edits offline, not knowing the case is about to move.
    let mut offline = load(&server, &a.token, x.id());
    offline.set_identity(&identity(&a, "arta", 6));
    let before_offline = offline.heads();
    offline
        .edit(Utc::now(), |e| {
            e.set("phone", Value::Text("+383 44 000 000".into()))
        })
        .unwrap();

    // The supervisor hands it to B.
    let mut theirs = load(&server, &sup.token, x.id());
    theirs.set_identity(&identity(&sup, "shpresa", 3));
    let before = theirs.heads();
    theirs.edit(Utc::now(), |e| e.assign("blerta")).unwrap();
    assert_eq!(
        push(&server, &sup.token, push_of(&mut theirs, &before)),
        Outcome::Stored
    );

    // B sees it, whole and by id.
    let (status, json) = server.get(&path, Some(&b.token));
    assert_eq!(
        (status, json["assigned_to"].as_str()),
        (200, Some("blerta"))
    );
    assert_eq!(json["fields"]["village"], "Zhur", "{json}");
    let resp = server
        .sync(
            Some(&b.token),
            &request(PAST_THE_END, vec![], vec![wire(x.id())]),
        )
        .response
        .unwrap();
    assert_eq!(resp.docs.len(), 1);

    // A is told to drop it, and from then on it is as missing as any record.
    let next = server
        .sync(Some(&a.token), &request(first.cursor, vec![], vec![]))
        .response
        .unwrap();
    assert_eq!(next.removed, vec![wire(x.id())]);
    assert!(next.changes.iter().all(|c| c.record != wire(x.id())));
    assert_eq!(
        get_raw(&server, &path, Some(&a.token)),
        get_raw(&server, &missing, Some(&a.token))
    );
    // (Asked from where her device is: a cursor past the page that told her would
    // say she has committed it, and end what she may still deliver, below.)
    let resp = server
        .sync(
            Some(&a.token),
            &request(first.cursor, vec![], vec![wire(x.id())]),
        )
        .response
        .unwrap();
    assert!(resp.docs.is_empty());
    assert_eq!(resp.unavailable, vec![wire(x.id())]);
    let listed = server.get("/v1/records", Some(&a.token)).1;
    assert!(!listed.to_string().contains(&x.id().to_string()));
    // What A saved before she knew is not lost: her device pushes it in the request
    // whose answer tells it to drop the record (its cursor is still before the
    // reassignment); once it has committed that page, nothing more is taken.
    let late = push_of(&mut offline, &before_offline);
    let reply = server
        .sync(
            Some(&a.token),
            &request(first.cursor, vec![late.clone()], vec![]),
        )
        .response
        .unwrap();
    assert_eq!(reply.results[0].outcome, Outcome::Stored);
    assert_eq!(reply.removed, vec![wire(x.id())]);
    let mut after_told = offline.clone();
    let told_heads = after_told.heads();
    after_told
        .edit(Utc::now(), |e| e.set("urgency", Value::Text("low".into())))
        .unwrap();
    let reply = server
        .sync(
            Some(&a.token),
            &request(
                next.cursor,
                vec![push_of(&mut after_told, &told_heads)],
                vec![],
            ),
        )
        .response
        .unwrap();
    assert!(
        matches!(
            reply.results[0].outcome,
            Outcome::Rejected {
                reason: Rejection::Forbidden,
                ..
            }
        ),
        "{:?}",
        reply.results
    );
    assert_eq!(server.get(&path, Some(&a.token)).0, 404);
    let (_, json) = server.get(&path, Some(&b.token));
    assert_eq!(json["fields"]["phone"], "+383 44 000 000");
    let again = server
        .sync(Some(&a.token), &request(next.cursor, vec![], vec![]))
        .response
        .unwrap();
    assert!(again.removed.is_empty(), "told once");

    // A record A created stays hers when it is assigned to B: both see it.
    let mut own = new_record(&identity(&a, "arta", 4), 4);
    assert_eq!(
        push(&server, &a.token, push_of(&mut own, &[])),
        Outcome::Stored
    );
    let mut theirs = load(&server, &sup.token, own.id());
    theirs.set_identity(&identity(&sup, "shpresa", 5));
    let before = theirs.heads();
    theirs.edit(Utc::now(), |e| e.assign("blerta")).unwrap();
    assert_eq!(
        push(&server, &sup.token, push_of(&mut theirs, &before)),
        Outcome::Stored
    );
    let own_path = format!("/v1/records/{}", own.id());
    assert_eq!(server.get(&own_path, Some(&b.token)).0, 200);
    assert_eq!(server.get(&own_path, Some(&a.token)).0, 200);
    let later = server
        .sync(Some(&a.token), &request(again.cursor, vec![], vec![]))
        .response
        .unwrap();
    assert!(later.removed.is_empty());
    assert!(later.changes.iter().any(|c| c.record == wire(own.id())));
}
