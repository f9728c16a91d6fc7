//! Generating a world from its [`SimConfig`]: practices, their accounts on the
//! platforms (places, motives, agendas) and, on Doctolib, their first appointments.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::life::new_appointment;
use crate::names;
use crate::world::{
    current_hour, fold, mix, pick, rng_for, Account, Agenda, Kind, Motive, Place, Platform,
    Practice, SimConfig, SlotFormat, World,
};

impl World {
    /// Generates the world `config` describes.
    pub fn generate(config: SimConfig) -> World {
        let epoch = config.epoch.unwrap_or_else(current_hour);
        let mut practices = Vec::new();
        let mut serial: u64 = 0;
        for p in 0..config.practices {
            let practice_id = format!("p{:03}", p + 1);
            let mut rng = rng_for(config.seed, p as u64, 0);
            let (town, zipcode) = *pick(&mut rng, names::TOWNS);
            let doctor = *pick(&mut rng, names::LAST_NAMES);
            let name = format!("Cabinet médical {doctor} ({town})");
            let mut kinds = vec![Kind::General];
            if config.dentist_every > 0 && p % config.dentist_every == 0 {
                kinds.push(Kind::Dental);
            }
            let mut accounts = Vec::new();
            let on = |platform| config.platforms.contains(&platform);
            let mut platforms: Vec<(Platform, Kind)> = Vec::new();
            if on(Platform::Doctolib) {
                platforms.extend(kinds.iter().map(|k| (Platform::Doctolib, *k)));
            }
            let others: &[(Platform, Kind)] = match p % 3 {
                0 => &[
                    (Platform::Keldoc, Kind::General),
                    (Platform::Maiia, Kind::General),
                ],
                1 => &[(Platform::Ordoclic, Kind::Pharmacy)],
                _ => &[(Platform::Mapharma, Kind::Pharmacy)],
            };
            platforms.extend(others.iter().filter(|(pl, _)| on(*pl)));
            for (platform, kind) in platforms {
                serial += 1;
                accounts.push(generate_account(
                    &config,
                    epoch,
                    &practice_id,
                    p,
                    (platform, kind),
                    serial,
                    (town, zipcode),
                ));
            }
            practices.push(Practice {
                id: practice_id,
                name,
                accounts,
            });
        }
        World {
            config,
            epoch,
            clock: epoch,
            step: 0,
            practices,
        }
    }
}

fn generate_account(
    config: &SimConfig,
    epoch: DateTime<Utc>,
    practice_id: &str,
    p: usize,
    (platform, kind): (Platform, Kind),
    serial: u64,
    (town, zipcode): (&str, &str),
) -> Account {
    let mut rng = rng_for(
        config.seed,
        p as u64,
        1 + kind as u64 + 10 * platform as u64,
    );
    let (suffix, label, motive_list, category) = match (platform, kind) {
        (Platform::Doctolib, Kind::General) => (
            "cabinet",
            "Cabinet (médecine générale)",
            names::GENERAL_MOTIVES,
            None,
        ),
        (Platform::Doctolib, _) => (
            "dentaire",
            "Cabinet dentaire",
            names::DENTAL_MOTIVES,
            Some(1),
        ),
        (other, Kind::Pharmacy) => (other.as_str(), "Pharmacie", names::PHARMACY_MOTIVES, None),
        (other, _) => (
            other.as_str(),
            "Centre de soins",
            names::GENERAL_MOTIVES,
            None,
        ),
    };
    let profile_id = 100_000 + serial;
    let street = *pick(&mut rng, names::STREETS);
    let place = Place {
        id: format!("practice-{}", 200_000 + serial),
        practice_id: 200_000 + serial,
        name: format!("{label} — {town}"),
        address: format!("{} {street}, {zipcode} {town}", rng.random_range(1..120)),
        city: town.into(),
        zipcode: zipcode.into(),
    };
    let motives: Vec<Motive> = motive_list
        .iter()
        .enumerate()
        .map(|(i, (name, duration))| Motive {
            id: serial * 100 + i as u64 + 1,
            name: (*name).into(),
            ref_visit_motive_id: 6000 + i as u64,
            category_id: category,
            allow_new_patients: i != 2,
            duration_min: *duration,
        })
        .collect();
    let all: Vec<u64> = motives.iter().map(|m| m.id).collect();
    let doctor = |rng: &mut ChaCha8Rng| {
        format!(
            "Dr {} {}",
            pick(rng, names::FIRST_NAMES),
            pick(rng, names::LAST_NAMES)
        )
    };
    let agendas = match kind {
        Kind::General => vec![
            Agenda {
                id: serial * 10 + 1,
                practitioner: doctor(&mut rng),
                booking_disabled: false,
                motive_ids: all.clone(),
                slot_format: SlotFormat::IsoString,
            },
            Agenda {
                id: serial * 10 + 2,
                practitioner: doctor(&mut rng),
                booking_disabled: false,
                motive_ids: all[..2].to_vec(),
                slot_format: SlotFormat::Object,
            },
            Agenda {
                id: serial * 10 + 3,
                practitioner: doctor(&mut rng),
                booking_disabled: true,
                motive_ids: all.clone(),
                slot_format: SlotFormat::IsoString,
            },
        ],
        Kind::Dental | Kind::Pharmacy => vec![
            Agenda {
                id: serial * 10 + 1,
                practitioner: doctor(&mut rng),
                booking_disabled: false,
                motive_ids: all.clone(),
                slot_format: SlotFormat::DateOnly,
            },
            Agenda {
                id: serial * 10 + 2,
                practitioner: doctor(&mut rng),
                booking_disabled: false,
                motive_ids: all[1..].to_vec(),
                slot_format: SlotFormat::Object,
            },
        ],
    };
    // Only Doctolib has agendas closed to online booking and bare-date agendas; Mapharma
    // publishes one campaign: one agenda, one motive, open to all.
    let mut agendas = agendas;
    let mut motives = motives;
    if platform != Platform::Doctolib {
        agendas.retain(|a| !a.booking_disabled);
        for a in &mut agendas {
            a.slot_format = SlotFormat::IsoString;
        }
    }
    if platform == Platform::Mapharma {
        agendas.truncate(1);
        motives.truncate(1);
        agendas[0].motive_ids = vec![motives[0].id];
    }
    let mut account = Account {
        id: format!("{practice_id}-{suffix}"),
        practice_id: practice_id.into(),
        platform,
        phone_only: false,
        label: label.into(),
        kind,
        profile_id,
        centre: format!("{}-{}-{}", suffix, fold(town), profile_id),
        token: format!("sim-token-{:016x}", mix(config.seed ^ profile_id)),
        place,
        motives,
        agendas,
        appointments: BTreeMap::new(),
        removed: BTreeSet::new(),
        next_seq: 0,
    };
    let appointments = if platform == Platform::Doctolib {
        config.appointments_per_account
    } else {
        0
    };
    for _ in 0..appointments {
        let a = new_appointment(&mut rng, &mut account, epoch, -25..55, false);
        account.appointments.insert(a.id.clone(), a);
    }
    account
}
