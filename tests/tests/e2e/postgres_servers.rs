//! Several servers on one PostgreSQL database (issue 14): the real server over
//! `PgStorage` (`intake_tests::pg_server`), three of them on one throwaway database
//! (`intake_tests::postgres`), and real devices with their own encrypted stores that
//! enrol and sync through whichever server, at random, round after round. Every device
//! ends with every record it may see, at the heads the database holds: nothing lost,
//! nothing twice, all converged. And the supervisors' dashboard and the admin API on a
//! server over PostgreSQL: every page and every admin call answers (the backend's
//! blocking client panics on an async executor thread, so this also proves that every
//! handler reaches storage through `web::block`). Attempt limits hold across the
//! servers: guesses spread over them are counted in the database. An installation
//! moved from SQLite keeps its devices' cursors. Three server processes, one
//! SIGKILLed and restarted while 20 devices sync through them: nothing lost or twice.

use intake_server::storage::{Role, Scope, SyncStorage};
use intake_shared::{RecordId, Value};
use intake_tests::TestDevice;
use intake_tests::dashboard::Dashboard;
use intake_tests::pg_server::PgServer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn devices_syncing_through_three_servers_on_one_database_converge() {
    let Some(db) = intake_tests::postgres::database(
        "postgres_servers::devices_syncing_through_three_servers_on_one_database_converge",
    ) else {
        return;
    };
    let servers: Vec<PgServer> = (0..3).map(|_| PgServer::start(&db.url)).collect();
    let mut rng = StdRng::seed_from_u64(0x14_5e_4e_e5);
    let people = [
        ("drita", Role::Paralegal),
        ("besa", Role::Paralegal),
        ("arben", Role::Paralegal),
        ("merita", Role::Supervisor),
    ];
    // Each user is added through one server and enrols through another: they share
    // nothing but the database.
    let mut devices: Vec<TestDevice> = people
        .iter()
        .enumerate()
        .map(|(i, &(name, role))| {
            let code = servers[i % 3].add_user(name, role, Some("prizren"));
            TestDevice::enroll_at(&servers[(i + 1) % 3].url, name, &code)
        })
        .collect();
    let mut mine: Vec<Vec<RecordId>> = vec![Vec::new(); devices.len()];
    for round in 0..6 {
        for (i, device) in devices.iter_mut().enumerate() {
            let id =
                device.create(&[("full_name", Value::Text(format!("{} {round}", device.name)))]);
            mine[i].push(id);
            // And an edit of one of its records (perhaps the new one).
            let earlier = mine[i][rng.random_range(0..mine[i].len())];
            let name = Value::Text(format!("{} edited {round}", device.name));
            device.edit(earlier, |e| e.set("full_name", name));
            let server = &servers[rng.random_range(0..3)];
            device.point_at(&server.url);
            device.sync().expect("sync");
        }
    }
    // Everyone syncs twice more, each time through another server, to pick up what the
    // others pushed after their last sync.
    for pass in 0..2 {
        for (i, device) in devices.iter_mut().enumerate() {
            device.point_at(&servers[(i + pass) % 3].url);
            device.sync().expect("final sync");
        }
    }

    let stored = servers[0]
        .storage
        .record_metas(&Scope::Team("prizren".into()))
        .unwrap();
    let written: usize = mine.iter().map(Vec::len).sum();
    assert_eq!(stored.len(), written, "every record stored once, none lost");
    for (meta, _) in &stored {
        let heads = servers[0].storage.record(meta.id).unwrap().unwrap().heads;
        for device in &devices {
            // A paralegal sees her own records, the supervisor the whole team's.
            let sees = device.name == "merita" || device.name == meta.owner;
            assert_eq!(device.has(meta.id), sees, "{} and {}", device.name, meta.id);
            if sees {
                assert_eq!(
                    device.record(meta.id).heads().concat(),
                    heads,
                    "{} holds {} as the database does",
                    device.name,
                    meta.id
                );
            }
        }
    }
    // Every change is in the log exactly once (the hash is unique), whoever relayed it.
    let log_entries: usize = stored
        .iter()
        .map(|(meta, _)| servers[1].storage.receipts(meta.id).unwrap().len())
        .sum();
    assert_eq!(
        log_entries,
        written + 6 * devices.len(),
        "a creation and an edit per round"
    );
}

#[test]
fn the_dashboard_and_the_admin_api_work_on_postgres() {
    let Some(db) = intake_tests::postgres::database(
        "postgres_servers::the_dashboard_and_the_admin_api_work_on_postgres",
    ) else {
        return;
    };
    let settings = intake_server::Settings {
        workers: 2,
        admin_api: intake_server::config::AdminApi::On,
        ..intake_server::Settings::default()
    };
    let server = PgServer::start_with(&db.url, settings);
    let storage = server.storage.as_ref();
    let code = server.add_user("drita", Role::Paralegal, Some("prizren"));
    let mut drita = TestDevice::enroll_at(&server.url, "drita", &code);
    let id = drita.create(&[("full_name", Value::Text("Arta Krasniqi".into()))]);
    drita.sync().expect("sync");

    server.add_user("vesa", Role::Supervisor, Some("prizren"));
    let vesa = Dashboard::with_password_at(&server.url, storage, "vesa");
    let page = format!("/records/{id}");
    for path in [
        "/",
        "/records",
        page.as_str(),
        "/summary",
        "/summary.csv",
        "/duplicates",
        "/export.csv",
        "/export.json",
    ] {
        let got = vesa.get(path);
        assert!(
            got.status == 200 || (path == "/" && got.status == 303),
            "{path}: {} {}",
            got.status,
            got.body
        );
    }
    assert!(vesa.get("/records").body.contains("Arta Krasniqi"));
    // A write from the dashboard: an Automerge change through the sync path's storage,
    // which the device then pulls.
    let commented = vesa.submit(
        &page,
        &format!("{page}/comment"),
        &[("text", "Call first.")],
    );
    assert_eq!(commented.status, 303, "{}", commented.body);
    drita.sync().expect("sync after the comment");
    assert_eq!(
        drita.record(id).comments().len(),
        1,
        "the comment reached the device"
    );

    // The admins' pages, signed in as `admin`.
    let code = server.add_user("admin", Role::Admin, None);
    let admin = Dashboard::with_password_at(&server.url, storage, "admin");
    for path in ["/admin/users", "/admin/devices", "/admin/audit"] {
        let got = admin.get(path);
        assert_eq!(got.status, 200, "{path}: {}", got.body);
    }
    assert!(admin.get("/admin/users").body.contains("drita"));

    // The admin API, with an admin's device token.
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let enrolled: serde_json::Value = http
        .post(format!("{}/v1/enroll", server.url))
        .json(&serde_json::json!({ "code": code, "actor": "ad".repeat(16), "label": "admin" }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = enrolled["token"]
        .as_str()
        .expect("an admin token")
        .to_string();
    let call = |method: reqwest::Method, path: &str| {
        let resp = http
            .request(method, format!("{}/v1/admin{path}", server.url))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "name": "besa", "role": "paralegal", "team": "prizren" }))
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().unwrap())
    };
    let (status, users) = call(reqwest::Method::GET, "/users");
    assert_eq!(status, 200, "{users}");
    assert!(users.contains("drita"), "{users}");
    let (status, body) = call(reqwest::Method::POST, "/users");
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(reqwest::Method::POST, "/users/besa/code");
    assert_eq!(status, 200, "{body}");
    let (status, devices) = call(reqwest::Method::GET, "/devices");
    assert_eq!(status, 200, "{devices}");
    let (status, body) = call(reqwest::Method::POST, "/users/besa/disable");
    assert_eq!(status, 200, "{body}");
    assert!(
        storage
            .users()
            .unwrap()
            .iter()
            .any(|u| u.name == "besa" && u.disabled)
    );
}

#[test]
fn guesses_spread_over_three_servers_are_limited_as_against_one() {
    let Some(db) = intake_tests::postgres::database(
        "postgres_servers::guesses_spread_over_three_servers_are_limited_as_against_one",
    ) else {
        return;
    };
    let servers: Vec<PgServer> = (0..3).map(|_| PgServer::start(&db.url)).collect();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    // Wrong passwords for one account, each through the next server: 10 in all. (First:
    // the code she sets her password with counts against the address that the
    // enrolment guesses below use up.)
    servers[0].add_user("vesa", Role::Supervisor, Some("prizren"));
    let vesa = Dashboard::with_password_at(&servers[1].url, servers[1].storage.as_ref(), "vesa");
    let browsers: Vec<Dashboard> = servers.iter().map(|s| Dashboard::at(&s.url)).collect();
    for n in 0..10 {
        let wrong = browsers[n % 3].sign_in("vesa", "a wrong guess here");
        assert_eq!(wrong.status, 401, "guess {n}: {}", wrong.body);
    }
    for browser in &browsers {
        let blocked = browser.sign_in("vesa", intake_tests::dashboard::PASSWORD);
        assert_eq!(blocked.status, 429, "every server refuses now");
    }
    // Her session, signed in before, goes on.
    assert_eq!(vesa.get("/records").status, 200);
    // Wrong enrolment codes from one address, each through the next server: the
    // address has 10 per window in all, not 10 per server.
    let statuses: Vec<u16> = (0..12)
        .map(|n| {
            let server = &servers[n % 3];
            http.post(format!("{}/v1/enroll", server.url))
                .json(&serde_json::json!({
                    "code": format!("ZZZZ-ZZZZ-{n:04}"),
                    "actor": "42".repeat(16),
                    "label": "guess",
                }))
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429, 429], "{statuses:?}");
}

#[test]
fn an_installation_moved_to_postgres_keeps_its_devices_cursors() {
    let Some(db) = intake_tests::postgres::database(
        "postgres_servers::an_installation_moved_to_postgres_keeps_its_devices_cursors",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server =
        intake_tests::TestServer::start_sqlite_in(&data, intake_server::Settings::default());
    let people = [
        ("drita", Role::Paralegal),
        ("besa", Role::Paralegal),
        ("merita", Role::Supervisor),
    ];
    let mut devices = TestDevice::enroll_all(&server, &people, "prizren");
    let mut created = Vec::new();
    for round in 0..3 {
        for device in devices.iter_mut() {
            let name = Value::Text(format!("{} {round}", device.name));
            created.push(device.create(&[("full_name", name)]));
            device.sync().expect("sync on SQLite");
        }
    }
    // An erasure takes a log position too (the log head is the later of both).
    let who = intake_server::erase::Requester {
        via: "command line",
        ..Default::default()
    };
    intake_server::erase::erase(
        server.storage.as_ref(),
        created[1],
        "asked by the client",
        &who,
        chrono::Utc::now(),
    )
    .unwrap();
    for device in devices.iter_mut() {
        device.sync().expect("sync on SQLite");
    }
    let key = server.key();
    let settings = intake_server::Settings {
        data_dir: data.clone(),
        ..intake_server::Settings::default()
    };
    drop(server);

    let report = intake_server::migrate_data::migrate(&settings, &key, &db.url).expect("migrate");
    assert_eq!(
        report.records,
        created.len() - 1,
        "every record, the erased one not"
    );
    assert_eq!(
        report.log_entries,
        created.len() - 1,
        "one creation each left"
    );
    assert_eq!(
        report.log_head,
        created.len() as i64 + 1,
        "9 creations and the erasure"
    );
    let again = intake_server::migrate_data::migrate(&settings, &key, &db.url).unwrap_err();
    assert!(
        again.to_string().contains("already holds a store"),
        "{again}"
    );

    // The same devices, with the cursors they hold, on PostgreSQL: nothing again.
    let pg = PgServer::start(&db.url);
    for device in devices.iter_mut() {
        device.point_at(&pg.url);
        let s = device.sync().expect("sync on PostgreSQL");
        assert_eq!(
            (s.sent, s.received, s.removed, s.erased),
            (0, 0, 0, 0),
            "{}: nothing sent or received again",
            device.name
        );
    }
    // And nothing missed from now on: new work reaches whoever may see it.
    let id = devices[0].create(&[("full_name", Value::Text("Arta Krasniqi".into()))]);
    devices[0].sync().unwrap();
    assert_eq!(
        devices[2].sync().unwrap().received,
        1,
        "the supervisor pulls it"
    );
    assert_eq!(
        devices[1].sync().unwrap().received,
        0,
        "besa may not see it"
    );
    assert!(devices[2].has(id));
    for meta in pg
        .storage
        .record_metas(&Scope::Team("prizren".into()))
        .unwrap()
    {
        let heads = pg.storage.record(meta.0.id).unwrap().unwrap().heads;
        assert_eq!(devices[2].record(meta.0.id).heads().concat(), heads);
    }
}

/// Three server processes on one database, 20 devices syncing through them at random
/// on threads of their own, one server SIGKILLed mid-run and started again: every
/// change stored once, none lost, every device converged with the database.
#[test]
fn a_server_killed_among_three_loses_nothing_and_devices_converge() {
    use intake_tests::kill_mid_sync::{ServerProcess, free_address};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let Some(db) = intake_tests::postgres::database(
        "postgres_servers::a_server_killed_among_three_loses_nothing_and_devices_converge",
    ) else {
        return;
    };
    const DEVICES: usize = 20;
    const ROUNDS: usize = 4;
    let storage = intake_server::storage::postgres::PgStorage::connect(&db.url).expect("connect");
    let codes: Vec<(String, String)> = (0..DEVICES)
        .map(|i| {
            // Two supervisors see the whole team; the others their own records.
            let (name, role) = match i {
                0 | 1 => (format!("sup{i}"), Role::Supervisor),
                _ => (format!("p{i:02}"), Role::Paralegal),
            };
            let code = intake_server::admin::add_user(&storage, &name, role, Some("prizren"), 60)
                .unwrap()
                .enrolment_code;
            (name, code)
        })
        .collect();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_intake-test-server"));
    let place = std::path::Path::new(&db.url);
    let mut servers: Vec<ServerProcess> = (0..3)
        .map(|_| ServerProcess::start(bin, place, free_address()))
        .collect();
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("http://{}", s.addr))
        .collect();
    // Enrolled before the run, each through another server: a kill is for syncs.
    let enrolled: Vec<TestDevice> = codes
        .iter()
        .enumerate()
        .map(|(i, (name, code))| TestDevice::enroll_at(&urls[i % 3], name, code))
        .collect();
    let failed_syncs = AtomicUsize::new(0);
    let syncs = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let (devices, written): (Vec<TestDevice>, Vec<Vec<RecordId>>) = std::thread::scope(|s| {
        let workers: Vec<_> = enrolled
            .into_iter()
            .enumerate()
            .map(|(i, mut device)| {
                let (urls, failed_syncs, syncs) = (&urls, &failed_syncs, &syncs);
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(0x14_4b_11 + i as u64);
                    let name = device.name.clone();
                    let mut mine = Vec::new();
                    for round in 0..ROUNDS {
                        let id =
                            device.create(&[("full_name", Value::Text(format!("{name} {round}")))]);
                        mine.push(id);
                        let earlier = mine[rng.random_range(0..mine.len())];
                        let text = Value::Text(format!("{name} edited {round}"));
                        device.edit(earlier, |e| e.set("full_name", text));
                        // Through a random server; one that is down (killed) is left
                        // for another, as a load balancer would.
                        let mut tries = 0;
                        loop {
                            device.point_at(&urls[rng.random_range(0..3)]);
                            syncs.fetch_add(1, Ordering::Relaxed);
                            match device.sync() {
                                Ok(_) => break,
                                Err(_) if tries < 50 => {
                                    tries += 1;
                                    failed_syncs.fetch_add(1, Ordering::Relaxed);
                                    std::thread::sleep(std::time::Duration::from_millis(20));
                                }
                                Err(e) => panic!("{name}: no server took the sync: {e}"),
                            }
                        }
                    }
                    (device, mine)
                })
            })
            .collect();
        // Mid-run: the second server is SIGKILLed, whatever it is doing, and started
        // again a moment later on the same address.
        std::thread::sleep(std::time::Duration::from_millis(700));
        let killed = ServerProcess::kill(&servers[1].child);
        let killed_at = started.elapsed();
        std::thread::sleep(std::time::Duration::from_millis(300));
        servers[1].restart();
        eprintln!(
            "server 1 killed (running: {killed}) at {killed_at:?}, restarted at {:?}",
            started.elapsed()
        );
        assert!(killed, "the server ran when it was killed");
        workers
            .into_iter()
            .map(|w| w.join().expect("a device's thread"))
            .unzip()
    });
    let mut devices = devices;
    // Everyone syncs twice more (all three servers up) to pick up the others' work.
    for pass in 0..2 {
        for (i, device) in devices.iter_mut().enumerate() {
            device.point_at(&urls[(i + pass) % 3]);
            device.sync().expect("final sync");
        }
    }

    let stored = storage
        .record_metas(&Scope::Team("prizren".into()))
        .unwrap();
    let written_count: usize = written.iter().map(Vec::len).sum();
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let row = client
        .query_one("SELECT count(*), count(DISTINCT hash) FROM log", &[])
        .unwrap();
    let (entries, distinct): (i64, i64) = (row.get(0), row.get(1));
    let mut diverged = 0;
    for (meta, _) in &stored {
        let heads = storage.record(meta.id).unwrap().unwrap().heads;
        for device in &devices {
            let sees = device.name.starts_with("sup") || device.name == meta.owner;
            assert_eq!(device.has(meta.id), sees, "{} and {}", device.name, meta.id);
            if sees && device.record(meta.id).heads().concat() != heads {
                diverged += 1;
            }
        }
    }
    eprintln!(
        "3 servers, {DEVICES} devices, {} syncs ({} failed and retried elsewhere), \
         {} records, {entries} log entries, in {:?}",
        syncs.load(Ordering::Relaxed),
        failed_syncs.load(Ordering::Relaxed),
        stored.len(),
        started.elapsed()
    );
    assert!(
        failed_syncs.load(Ordering::Relaxed) > 0,
        "the kill fell mid-run: some syncs found the server down"
    );
    assert_eq!(
        stored.len(),
        written_count,
        "every record stored, none lost"
    );
    assert_eq!(entries, distinct, "no change stored twice");
    assert_eq!(
        entries as usize,
        2 * DEVICES * ROUNDS,
        "a creation and an edit per device and round: none lost, none twice"
    );
    assert_eq!(diverged, 0, "every device holds what the database holds");
}
