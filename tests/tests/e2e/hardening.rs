//! Smaller hardening of issue 12, end to end: an actor id stays bound to the user whose
//! device first enrolled it, and a device can rotate its token without ever being locked
//! out by an answer lost on the way.

use intake_server::storage::Role;
use intake_shared::Value;
use intake_tests::{TestDevice, TestServer};
use serde_json::json;

/// A revoked phone's actor id cannot be enrolled for another user: the changes it
/// signed would become that user's. The same user may bring it back (a phone revoked by
/// mistake), and the refused code stays usable for a phone with a fresh store.
#[test]
fn an_actor_stays_bound_to_its_first_user() {
    let server = TestServer::start();
    let actor = [0x42; 16];
    let drita = server.enroll(
        &server.add_user("drita", Role::Paralegal, Some("prizren")),
        actor,
    );
    assert!(server.storage.revoke_device(drita.device_id).unwrap());

    let code = server.add_user("besa", Role::Paralegal, Some("prizren"));
    let (status, body) = server.post(
        "/v1/enroll",
        None,
        &json!({ "code": code, "actor": hex::encode(actor), "label": "besa's phone" }),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("another user"),
        "{body}"
    );
    assert!(
        server
            .storage
            .devices()
            .unwrap()
            .iter()
            .all(|d| d.user != "besa"),
        "no device was made for besa"
    );
    // Her code was not spent by the refusal: a fresh store (a new actor) enrols with it.
    server.enroll(&code, [0x43; 16]);

    // Drita's own phone, revoked by mistake, may come back with its actor.
    let again = server.storage.as_ref();
    let code = intake_server::admin::new_code(again, "drita", 60)
        .unwrap()
        .enrolment_code;
    server.enroll(&code, actor);
}

/// `POST /v1/token`: the new token works at once; the old one keeps working until the
/// new one is used (an answer lost on a 2G link locks nobody out), then never again.
#[test]
fn a_rotated_token_replaces_the_old_one_once_it_is_used() {
    let server = TestServer::start();
    let dev = server.user_device("drita", Role::Paralegal, Some("prizren"));
    let rotate = |token: &str| {
        let (status, body) = server.post("/v1/token", Some(token), &json!({}));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["device_id"], json!(dev.device_id));
        body["token"].as_str().unwrap().to_string()
    };
    let me = |token: &str| server.get("/v1/me", Some(token)).0;

    // The first answer is "lost": the device still holds the old token and asks again.
    let lost = rotate(&dev.token);
    assert_eq!(me(&dev.token), 200, "the old token is still good");
    let second = rotate(&dev.token);
    assert_ne!(lost, second);
    assert_eq!(me(&lost), 401, "a token given in a lost answer is replaced");
    // The device uses its new token: from then on the old one is refused.
    assert_eq!(me(&second), 200);
    assert_eq!(me(&dev.token), 401);
    assert_eq!(me(&second), 200);
    // Rotating needs a live token.
    assert_eq!(
        server.post("/v1/token", Some(&dev.token), &json!({})).0,
        401
    );
    assert!(server.storage.revoke_device(dev.device_id).unwrap());
    assert_eq!(server.post("/v1/token", Some(&second), &json!({})).0, 401);
}

/// The client library rotates and keeps syncing with the new token; nothing it holds is
/// lost on the way.
#[test]
fn a_device_rotates_its_token_and_keeps_syncing() {
    let server = TestServer::start();
    let mut dev = TestDevice::enroll(&server, "drita", Role::Paralegal, Some("prizren"));
    let id = dev.create(&[("full_name", Value::Text("Drita Krasniqi".into()))]);
    let old = dev.store.enrolment().unwrap().unwrap().token;
    intake_client::rotate_token(&mut dev.store).unwrap();
    let new = dev.store.enrolment().unwrap().unwrap().token;
    assert_ne!(old, new);
    let s = dev.sync().unwrap();
    assert_eq!(s.sent, 1);
    assert!(server.storage.record(id).unwrap().is_some());
    assert_eq!(server.get("/v1/me", Some(&old)).0, 401);
}
