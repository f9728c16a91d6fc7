//! The open-data export in ViteMaDose's format: the files have the shapes of the
//! recorded ViteMaDose outputs (`../shared/fixtures/vitemadose/fixtures/stats`), a
//! practice without slots is in `centres_indisponibles`, and no patient value reaches
//! any file.

use std::path::PathBuf;

use passerelle::model::public::PublicInfo;
use passerelle::model::run::Mode;
use passerelle::service::practices::PracticeUpdate;
use passerelle_tests::{databases, sim_env};
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
        let s = sim_env(&db, passerelle_tests::sim_config(3, 20)).await;
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
        for (id, department) in practices.iter().zip(["75", "75", "2A"]) {
            let update = PracticeUpdate {
                public: Some(Some(public(department))),
                ..PracticeUpdate::default()
            };
            app.update_practice(id, update, chrono::Utc::now())
                .await
                .unwrap();
        }
        let bad = PracticeUpdate {
            public: Some(Some(public("999"))),
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
        let report = app
            .export_vitemadose(&dir, chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(report.departments, 2, "{report:?}");
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
        for centre in available {
            assert!(centre["appointment_count"].as_u64().unwrap() > 0);
            assert!(centre["prochain_rdv"].is_string());
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
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o644, "{}", path.display());
            }
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
        // Only the files: the temporary ones were renamed.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".json")), "{names:?}");
    }
}
