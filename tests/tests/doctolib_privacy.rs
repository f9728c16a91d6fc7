//! The end-to-end suite's privacy half: with logs captured at the most verbose level,
//! full, incremental, drifting and failing Doctolib runs leave no simulated patient's
//! name, birth date, phone or e-mail in any log line, error or run record.

use passerelle_tests as common;

use common::{databases, sim_config, sim_env};
use passerelle::model::run::Mode;
use passerelle_sim::{Change, Drift, Faults};

/// Whether `word` occurs in `text` as a whole word.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[tokio::test]
async fn no_patient_value_in_logs_errors_or_runs() {
    let capture = common::Capture::install();

    for db in databases().await {
        let e = sim_env(&db, sim_config(2, 80)).await;
        // Every patient the simulator ever serves in this test, deleted ones included.
        let mut patients: Vec<passerelle_sim::world::Patient> = Vec::new();
        let collect = |e: &common::SimEnv, into: &mut Vec<passerelle_sim::world::Patient>| {
            let world = e.sim.world();
            for a in world.accounts() {
                into.extend(a.appointments.values().map(|x| x.patient.clone()));
            }
        };
        collect(&e, &mut patients);
        e.sync_all(Mode::Full).await;
        e.sim.advance();
        collect(&e, &mut patients);
        e.sync_all(Mode::Incremental).await;
        e.sim.set_faults(
            "doctolib",
            Faults {
                endpoint: Some("appointments".into()),
                drift: Some(Drift {
                    field: "email".into(),
                    change: Change::Retype,
                    nth: Some(3),
                }),
                ..Faults::default()
            },
        );
        e.sync("p001-cabinet", Mode::Full).await;
        e.sim.set_faults(
            "doctolib",
            Faults {
                truncate_every: 1,
                ..Faults::default()
            },
        );
        e.sync("p002-cabinet", Mode::Full).await;
        e.sim.clear_faults();

        let logs = capture.text();
        assert!(logs.contains("run finished"), "logs were captured");
        let runs = common::all_runs(&e.env.app).await;
        assert!(runs.iter().any(
            |r| r.error_kind.map(passerelle::model::run::ErrorKind::as_str) == Some("schema-drift")
        ));
        let runs_text = serde_json::to_string(&runs).unwrap();
        // Names the simulator also gives practitioners or places are not proof of a leak.
        let world = e.sim.world().clone();
        let public: String = world
            .accounts()
            .flat_map(|a| {
                a.agendas
                    .iter()
                    .map(|g| g.practitioner.clone())
                    .chain([a.place.name.clone(), a.place.address.clone()])
            })
            .collect::<Vec<_>>()
            .join(" ");
        assert!(patients.len() > 300);
        let mut values: Vec<(String, &str)> = Vec::new();
        for p in &patients {
            let digits: String = p.phone.chars().filter(char::is_ascii_digit).collect();
            values.push((format!("{} {}", p.first_name, p.last_name), &p.id));
            values.push((p.birth_date.format("%Y-%m-%d").to_string(), &p.id));
            values.push((p.phone.clone(), &p.id));
            values.push((digits, &p.id));
            values.push((p.email.clone(), &p.id));
            if !has_word(&public, &p.last_name) && p.last_name.chars().count() >= 5 {
                values.push((p.last_name.clone(), &p.id));
            }
        }
        // One pass over megabytes of TRACE output for all values at once.
        let finder = aho_corasick::AhoCorasick::new(values.iter().map(|(v, _)| v)).unwrap();
        for (name, text) in [("a log line", &logs), ("a run record", &runs_text)] {
            for m in finder.find_overlapping_iter(text.as_str()) {
                let (value, patient) = &values[m.pattern().as_usize()];
                let whole = value.chars().all(char::is_alphabetic);
                let before = text[..m.start()].chars().next_back();
                let after = text[m.end()..].chars().next();
                let bounded = !before.is_some_and(char::is_alphanumeric)
                    && !after.is_some_and(char::is_alphanumeric);
                assert!(
                    whole && !bounded,
                    "{}: {name} holds a value of patient {patient}",
                    db.name
                );
            }
        }
    }
}
