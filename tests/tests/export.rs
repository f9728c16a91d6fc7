//! The open-data export in ViteMaDose's format: the files have the shapes of the
//! recorded ViteMaDose outputs (`../shared/fixtures/vitemadose/fixtures/stats`), a
//! practice without slots is in `centres_indisponibles`, and no patient value reaches
//! any file.

use std::path::PathBuf;

use passerelle::model::public::PublicInfo;
use passerelle::model::run::Mode;
use passerelle::service::practices::PracticeUpdate;
use passerelle_tests::{databases, sim_env_with};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/vitemadose/fixtures/stats")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (../shared beside the checkout)", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The JSON type of a value, as a shape check compares them.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `ours` has every key `theirs` has, each of the same JSON type (or null where either
/// is null: ViteMaDose leaves unknown values null), recursively into objects.
fn same_shape(ours: &Value, theirs: &Value, path: &str) {
    match (ours, theirs) {
        (Value::Object(o), Value::Object(t)) => {
            for (key, value) in t {
                let mine = o
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key} is missing from {ours}"));
                same_shape(mine, value, &format!("{path}.{key}"));
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        _ => assert_eq!(kind(ours), kind(theirs), "{path}: {ours} against {theirs}"),
    }
}

#[tokio::test]
async fn the_export_has_vitemadoses_shapes_and_no_patient_data() {
    let info = fixture("info-centres.json");
    let stats = fixture("stat-output.json");
    let their_centre = &info["centres_disponibles"][0];
    for db in databases().await {
        // Only "Vaccination" is mapped to the published vocabulary.
        let mut config = passerelle::service::config::Config::default();
        config
            .export
            .motives
            .insert("Vaccination".into(), "ARNm".into());
        let s = sim_env_with(&db, passerelle_tests::sim_config(4, 20), config).await;
        let app = &s.env.app;
        let practices: Vec<String> = s
            .sim
            .world()
            .practices
            .iter()
            .map(|p| p.id.clone())
            .collect();
        let public = |department: &str| PublicInfo {
            department: department.into(),
            address: Some("1 rue de la Paix".into()),
            city: Some("Paris".into()),
            postcode: Some("75002".into()),
            latitude: Some(48.8686),
            longitude: Some(2.3308),
            booking_url: Some("https://booking.example/cabinet".into()),
            kind: Some("general-practitioner".into()),
        };
        // The fourth practice has no address: its centres are left out, reported. The
        // second has no booking URL of its own: only its account with its own listing
        // is published, the others are left out.
        for (id, department) in practices.iter().zip(["75", "75", "2A", "75"]) {
            let mut info = public(department);
            if id == &practices[3] {
                info.address = None;
            }
            if id == &practices[1] {
                info.booking_url = None;
            }
            let update = PracticeUpdate {
                public: Some(Some(info.into())),
                ..PracticeUpdate::default()
            };
            app.update_practice(id, update, chrono::Utc::now())
                .await
                .unwrap();
        }
        let listed = app.store.list_accounts(Some(&practices[1])).await.unwrap()[0]
            .id
            .clone();
        let own_listing = passerelle::service::accounts::AccountUpdate {
            listing: Some(Some(passerelle::model::public::ListingPatch {
                booking_url: Some(Some("https://booking.example/own".into())),
                kind: Some(Some("drugstore".into())),
            })),
            ..Default::default()
        };
        app.update_account(&listed, own_listing).await.unwrap();
        let bad = PracticeUpdate {
            public: Some(Some(public("999").into())),
            ..PracticeUpdate::default()
        };
        assert!(app
            .update_practice(&practices[0], bad, chrono::Utc::now())
            .await
            .is_err());
        // Every account synced but the last practice's: it has no slots.
        let silent = &practices[2];
        for account in app.store.list_accounts(None).await.unwrap() {
            if &account.practice_id != silent {
                let run = s.sync(&account.id, Mode::Full).await;
                assert_eq!(run.status, passerelle::model::run::Status::Succeeded);
            }
        }

        let dir = s.env.dir.path().join("open-data");
        // A department file of an earlier export, now without any centre.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("13.json"), "{}").unwrap();
        std::fs::create_dir_all(dir.join("13")).unwrap();
        std::fs::write(dir.join("13/creneaux-quotidiens.json"), "{}").unwrap();
        let report = app
            .export_vitemadose(&dir, chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(report.departments, 2, "{report:?}");
        assert_eq!(
            report.removed,
            ["13.json", "13/creneaux-quotidiens.json"],
            "{report:?}"
        );
        assert!(!dir.join("13.json").exists() && !dir.join("13").exists());
        assert_eq!(app.last_export().await.unwrap().as_ref(), Some(&report));
        let without_address = app.store.list_accounts(Some(&practices[3])).await.unwrap();
        let without_url = app.store.list_accounts(Some(&practices[1])).await.unwrap();
        assert_eq!(
            report.left_out.len(),
            without_address.len() + without_url.len() - 1,
            "{report:?}"
        );
        for l in &report.left_out {
            if l.practice == practices[3] {
                assert!(l.reason.contains("address"), "{l:?}");
            } else {
                assert!(l.practice == practices[1] && l.account != listed, "{l:?}");
                assert!(l.reason.contains("booking URL"), "{l:?}");
            }
        }
        assert!(
            !report.unmapped_motives.is_empty() && !report.unmapped_motives.contains("Vaccination"),
            "{report:?}"
        );
        let read = |name: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
        };
        let all = read("info_centres.json");
        for key in [
            "version",
            "last_updated",
            "centres_disponibles",
            "centres_indisponibles",
        ] {
            same_shape(&all[key], &info[key], key);
        }
        let available = all["centres_disponibles"].as_array().unwrap();
        let unavailable = all["centres_indisponibles"].as_array().unwrap();
        assert!(!available.is_empty(), "{}", db.name);
        for centre in available.iter().chain(unavailable) {
            same_shape(centre, their_centre, "centre");
        }
        // The account's own listing wins over its practice's.
        let own: Vec<&Value> = available
            .iter()
            .chain(unavailable)
            .filter(|c| c["internal_id"].as_str().unwrap().ends_with(&listed))
            .collect();
        assert_eq!(own.len(), 1);
        assert_eq!(own[0]["url"], "https://booking.example/own");
        assert_eq!(own[0]["type"], "drugstore");
        // Strings where the format has strings; only mapped motives published.
        for centre in available.iter().chain(unavailable) {
            for field in [
                &centre["url"],
                &centre["metadata"]["address"],
                &centre["location"]["city"],
                &centre["location"]["cp"],
            ] {
                assert!(field.is_string(), "{centre}");
            }
            assert!(centre["location"]["latitude"].is_number(), "{centre}");
            for v in centre["vaccine_type"].as_array().unwrap() {
                assert_eq!(v, "ARNm", "{centre}");
            }
        }
        for centre in available {
            assert!(centre["appointment_count"].as_u64().unwrap() > 0);
            // Paris time, with its offset: the date part is the local day.
            let next = centre["prochain_rdv"].as_str().unwrap();
            assert!(
                next.ends_with("+01:00") || next.ends_with("+02:00"),
                "{next}"
            );
            let total_49 = centre["appointment_schedules"][4]["total"]
                .as_u64()
                .unwrap();
            assert!(total_49 <= centre["appointment_count"].as_u64().unwrap());
        }
        // The practice without slots: every centre of it unavailable, in its department.
        let corsica = read("2A.json");
        assert!(corsica["centres_disponibles"]
            .as_array()
            .unwrap()
            .is_empty());
        let silent_centres = corsica["centres_indisponibles"].as_array().unwrap();
        assert!(!silent_centres.is_empty());
        for c in silent_centres {
            assert_eq!(c["appointment_count"], 0);
            assert!(c["prochain_rdv"].is_null());
        }
        let paris = read("75.json");
        assert_eq!(
            paris["centres_disponibles"].as_array().unwrap().len(),
            available.len()
        );
        let st = read("stats.json");
        same_shape(&st["tout_departement"], &stats["tout_departement"], "stats");
        same_shape(&st["75"], &stats["01"], "stats.75");
        assert_eq!(st["tout_departement"]["disponibles"], available.len());
        assert_eq!(
            st["tout_departement"]["total"],
            available.len() + unavailable.len()
        );

        // No patient value anywhere in the files (a full name, phone, e-mail, birth
        // date: a surname alone is also a practitioner's or a practice's here).
        // Open data: readable by a web server running as another user.
        let mut text = String::new();
        let mut paths: Vec<PathBuf> = vec![];
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                paths.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else {
                paths.push(path);
            }
        }
        for path in &paths {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "{}", path.display());
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
        let mut checked = 0;
        for account in app.store.list_accounts(None).await.unwrap() {
            for a in app.store.appointments(&account.id).await.unwrap() {
                let p = a.record.patient.unwrap();
                for value in [
                    Some(format!("{} {}", p.first_name, p.last_name)),
                    p.phone,
                    p.email,
                    p.birth_date,
                ]
                .into_iter()
                .flatten()
                {
                    assert!(
                        !text.contains(&value),
                        "{}: a patient value in the export: {value}",
                        db.name
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 20, "{}: {checked}", db.name);
        for motive in &report.unmapped_motives {
            assert!(
                !text.contains(&format!("\"{motive}\"")),
                "an unmapped motive is published: {motive}"
            );
        }
        // Only the files: the temporary ones were renamed.
        let mut names: Vec<String> = paths
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut written = report.files.clone();
        written.sort();
        assert_eq!(names, written);

        // The files the front reads, walked as it walks them.
        walk_like_the_clients(&dir, &report);
        // A second export the same day: one point per day in the series.
        let again = app
            .export_vitemadose(&dir, chrono::Utc::now())
            .await
            .unwrap();
        let by_date = read("stats_by_date.json");
        assert_eq!(by_date["dates"].as_array().unwrap().len(), 1, "{by_date}");
        assert_eq!(by_date["total_centres"][0], again.centres);
    }
}

/// The demo's data, published as the demo publishes it (some practices without an
/// address, some without a booking URL of their own), exported: every file the clients
/// read is there and reads as they read it; what was left out is named with the reason.
#[tokio::test]
async fn the_demos_export_reads_as_the_clients_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo");
    let report = passerelle::dev::demo::run(passerelle::dev::demo::DemoOptions {
        data_dir: data_dir.clone(),
        database_url: None,
        plugins_dir: passerelle_tests::plugins_dir(),
        practices: 10,
        seed: 7,
        full: false,
        reset: false,
    })
    .await
    .unwrap();
    assert_eq!(report.failed, 0, "{}", report.closing);
    assert!(report.closing.contains("open data"), "{}", report.closing);
    let app = passerelle::Passerelle::open(&data_dir, Default::default())
        .await
        .unwrap();
    let export = app.last_export().await.unwrap().expect("the demo exported");
    let open_data = data_dir.join("open-data");
    walk_like_the_clients(&open_data, &export);
    assert!(
        export.available > 0 && export.departments >= 4,
        "{export:?}"
    );
    // Practices 4 and 9 have no address; 5 and 10 no booking URL of their own (their
    // first account has one).
    assert!(!export.left_out.is_empty());
    for l in &export.left_out {
        assert!(
            l.reason.contains("address") || l.reason.contains("booking URL"),
            "{l:?}"
        );
    }
    app.store.close().await;
}

/// A string, or a failure naming where.
fn string<'v>(v: &'v Value, at: &str) -> &'v str {
    v.as_str()
        .unwrap_or_else(|| panic!("{at}: a string expected, found {v}"))
}

/// A whole number, or a failure naming where.
fn number(v: &Value, at: &str) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{at}: a whole number expected, found {v}"))
}

/// Reads the export as the ViteMaDose front and its command-line client do, checking
/// each field they read has the type the published format gives (written down here from
/// the format, not from their code): the department list, then each department's centres
/// and daily counts, the statistics and their series by date.
fn walk_like_the_clients(
    dir: &std::path::Path,
    report: &passerelle::service::export::ExportReport,
) {
    let read = |name: &str| -> Value {
        let text =
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let departments = read("departements.json");
    let departments = departments.as_array().expect("departements.json is a list");
    assert_eq!(departments.len(), report.departments);
    let stats = read("stats.json");
    let (mut all_slots, mut all_available, mut all_centres) = (0, 0, 0);
    for d in departments {
        let code = string(&d["code_departement"], "code_departement");
        string(&d["nom_departement"], "nom_departement");
        string(&d["nom_region"], "nom_region");
        assert!(d["code_region"].is_number(), "code_region: {d}");
        if code == "75" {
            assert_eq!(d["nom_departement"], "Paris");
            assert_eq!(d["code_region"], 11);
        }
        let centres = read(&format!("{code}.json"));
        string(&centres["last_updated"], "last_updated");
        let available = centres["centres_disponibles"].as_array().unwrap();
        let unavailable = centres["centres_indisponibles"].as_array().unwrap();
        let daily = read(&format!("{code}/creneaux-quotidiens.json"));
        let days = daily["creneaux_quotidiens"].as_array().unwrap();
        assert_eq!(days.len(), 49, "{code}: one entry a day over 49 days");
        // Per centre, the days' counts, and the first day it has any.
        let mut per_centre: std::collections::BTreeMap<String, (u64, Option<String>)> =
            Default::default();
        for day in days {
            let date = string(&day["date"], "date");
            assert!(
                chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
                "{date}"
            );
            let mut sum = 0;
            for by_centre in day["creneaux_par_lieu"].as_array().unwrap() {
                let lieu = string(&by_centre["lieu"], "lieu");
                for tag in by_centre["creneaux_par_tag"].as_array().unwrap() {
                    assert_eq!(tag["tag"], "all");
                    let n = number(&tag["creneaux"], "creneaux");
                    let hours = tag["creneaux_par_heure"].as_array().unwrap();
                    assert_eq!(hours.len(), 24);
                    assert_eq!(
                        hours
                            .iter()
                            .map(|h| number(h, "creneaux_par_heure"))
                            .sum::<u64>(),
                        n
                    );
                    sum += n;
                    let entry = per_centre.entry(lieu.to_string()).or_default();
                    entry.0 += n;
                    if entry.1.is_none() && n > 0 {
                        entry.1 = Some(date.to_string());
                    }
                }
            }
            assert_eq!(number(&day["total"], "total"), sum, "{code} {date}");
        }
        let mut slots = 0;
        for centre in available.iter().chain(unavailable) {
            for field in [
                "departement",
                "nom",
                "url",
                "plateforme",
                "type",
                "internal_id",
            ] {
                string(&centre[field], field);
            }
            string(&centre["metadata"]["address"], "metadata.address");
            string(&centre["location"]["city"], "location.city");
            string(&centre["location"]["cp"], "location.cp");
            assert!(centre["location"]["latitude"].is_number());
            assert!(centre["location"]["longitude"].is_number());
            assert!(centre["appointment_by_phone_only"].is_boolean());
            let count = number(&centre["appointment_count"], "appointment_count");
            slots += count;
            let id = string(&centre["internal_id"], "internal_id");
            let (in_days, first_day) = per_centre.remove(id).unwrap_or_default();
            // The daily counts are the 49-day window's.
            assert_eq!(
                in_days,
                number(&centre["appointment_schedules"][4]["total"], "total"),
                "{id}"
            );
            // The date part of the next slot is the local day it falls on.
            match centre["prochain_rdv"].as_str() {
                Some(next) if first_day.is_some() => {
                    assert_eq!(Some(&next[..10]), first_day.as_deref(), "{id}")
                }
                Some(_) => {}
                None => assert_eq!(count, 0, "{id}"),
            }
        }
        assert!(
            per_centre.is_empty(),
            "{code}: counts of unknown centres {per_centre:?}"
        );
        let st = &stats[code];
        assert_eq!(number(&st["creneaux"], "creneaux"), slots, "{code}");
        assert_eq!(
            number(&st["disponibles"], "disponibles"),
            available.len() as u64
        );
        assert_eq!(
            number(&st["total"], "total"),
            (available.len() + unavailable.len()) as u64
        );
        all_slots += slots;
        all_available += available.len() as u64;
        all_centres += (available.len() + unavailable.len()) as u64;
    }
    let all = &stats["tout_departement"];
    assert_eq!(number(&all["creneaux"], "creneaux"), all_slots);
    assert_eq!(number(&all["disponibles"], "disponibles"), all_available);
    assert_eq!(number(&all["total"], "total"), all_centres);
    let by_date = read("stats_by_date.json");
    let dates = by_date["dates"].as_array().unwrap();
    assert!(!dates.is_empty());
    for series in [
        "total_centres_disponibles",
        "total_centres",
        "total_appointments",
    ] {
        let values = by_date[series].as_array().unwrap();
        assert_eq!(values.len(), dates.len(), "{series}");
        assert!(values.iter().all(Value::is_number), "{series}");
    }
    let last = dates.len() - 1;
    assert_eq!(by_date["total_appointments"][last], all_slots);
    assert_eq!(by_date["total_centres"][last], all_centres);
    // Older clients: every centre in one file.
    let info = read("info_centres.json");
    assert_eq!(
        (info["centres_disponibles"].as_array().unwrap().len()
            + info["centres_indisponibles"].as_array().unwrap().len()) as u64,
        all_centres
    );
}

/// Times are given in the department's own zone: Paris, or the overseas department's.
#[test]
fn overseas_departments_have_their_own_zone() {
    use passerelle::service::export::department_zone;
    assert_eq!(department_zone("75"), chrono_tz::Europe::Paris);
    assert_eq!(department_zone("2A"), chrono_tz::Europe::Paris);
    assert_eq!(department_zone("974"), chrono_tz::Indian::Reunion);
    assert_eq!(department_zone("972"), chrono_tz::America::Martinique);
}
