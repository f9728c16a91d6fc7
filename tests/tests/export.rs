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
        // The fourth practice has no address: its centres are left out, reported.
        for (id, department) in practices.iter().zip(["75", "75", "2A", "75"]) {
            let mut info = public(department);
            if id == &practices[3] {
                info.address = None;
            }
            let update = PracticeUpdate {
                public: Some(Some(info)),
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
        // A department file of an earlier export, now without any centre.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("13.json"), "{}").unwrap();
        let report = app
            .export_vitemadose(&dir, chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(report.departments, 2, "{report:?}");
        assert_eq!(report.removed, ["13.json"], "{report:?}");
        assert!(!dir.join("13.json").exists());
        let own = app.store.list_accounts(Some(&practices[3])).await.unwrap();
        assert_eq!(report.left_out.len(), own.len(), "{report:?}");
        assert!(report
            .left_out
            .iter()
            .all(|l| l.practice == practices[3] && l.reason.contains("address")));
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
        for motive in &report.unmapped_motives {
            assert!(
                !text.contains(&format!("\"{motive}\"")),
                "an unmapped motive is published: {motive}"
            );
        }
        // Only the files: the temporary ones were renamed.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".json")), "{names:?}");
    }
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
