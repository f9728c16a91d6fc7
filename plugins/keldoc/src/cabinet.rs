//! The cabinet: its name (from the clinic's list of cabinets) and the motives it offers,
//! each with the agendas (teams or practitioners) that take it.

use passerelle_sdk::http::{encode, get};
use passerelle_sdk::serde::Deserialize;
use passerelle_sdk::SyncError;

use crate::BOOKING;

const CABINETS: &str = "GET /api/patients/v2/clinics/{clinic}/specialties/{specialty}/cabinets";
const MOTIVES: &str =
    "GET /api/patients/v2/clinics/{clinic}/specialties/{specialty}/cabinets/{cabinet}/motive_categories";

/// The account's settings: which cabinet of which clinic.
#[derive(Debug, Clone, Copy)]
pub struct Ids<'a> {
    pub clinic: &'a str,
    pub specialty: &'a str,
    pub cabinet: &'a str,
}

/// One cabinet of the clinic, as the list of cabinets gives it.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct CabinetRow {
    pub id: u64,
    pub name: String,
}

/// A group of motives (`Je suis une personne de + 70 ANS`…).
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Category {
    pub motives: Vec<Motive>,
}

/// What a patient books: a motive, taken by some agendas.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Motive {
    pub id: u64,
    pub name: String,
    pub agendas: Vec<Agenda>,
}

/// A team or practitioner's agenda.
#[derive(Debug, Deserialize)]
#[serde(crate = "passerelle_sdk::serde")]
pub struct Agenda {
    pub id: u64,
    pub name: String,
}

/// The cabinet with its motives.
#[derive(Debug)]
pub struct Cabinet {
    pub id: u64,
    pub name: String,
    pub categories: Vec<Category>,
}

impl Cabinet {
    /// Every motive some agenda takes, each once (a motive may sit in two categories).
    pub fn motives(&self) -> Vec<&Motive> {
        let mut seen = std::collections::BTreeSet::new();
        self.categories
            .iter()
            .flat_map(|c| &c.motives)
            .filter(|m| !m.agendas.is_empty() && seen.insert(m.id))
            .collect()
    }

    /// The name of an agenda of `motive`, by id.
    pub fn agenda_name(motive: &Motive, id: u64) -> Option<&str> {
        motive
            .agendas
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.name.as_str())
    }
}

/// Reads the cabinet's name and motives; a cabinet the clinic does not list is a
/// setting to fix (`invalid-config`).
pub fn fetch(ids: &Ids) -> Result<Cabinet, SyncError> {
    let base = format!(
        "{BOOKING}/api/patients/v2/clinics/{}/specialties/{}/cabinets",
        encode(ids.clinic),
        encode(ids.specialty)
    );
    let cabinets: Vec<CabinetRow> = get(&base).endpoint(CABINETS).json()?;
    let id: u64 = ids
        .cabinet
        .parse()
        .map_err(|_| SyncError::InvalidConfig("setting `cabinet` must be a number".into()))?;
    let Some(row) = cabinets.into_iter().find(|c| c.id == id) else {
        return Err(SyncError::InvalidConfig(format!(
            "cabinet {id} is not one of clinic {}'s cabinets for specialty {} (check the settings)",
            ids.clinic, ids.specialty
        )));
    };
    let categories: Vec<Category> = get(format!("{base}/{id}/motive_categories"))
        .endpoint(MOTIVES)
        .json()?;
    Ok(Cabinet {
        id,
        name: row.name,
        categories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorded;
    use passerelle_sdk::drift;

    #[test]
    fn every_recorded_list_of_motives_reads() {
        // center1-cabinet-16913: four categories of one motive each, two agendas for
        // 81484 and 82874, one for 81486 and 81488. 16910 and the Ain centre: larger.
        let body = recorded("center1-cabinet-16913.json");
        let categories: Vec<Category> = drift::parse(MOTIVES, &body).unwrap();
        let cabinet = Cabinet {
            id: 16913,
            name: String::new(),
            categories,
        };
        let ids: Vec<u64> = cabinet.motives().iter().map(|m| m.id).collect();
        assert_eq!(ids, [81484, 81486, 81488, 82874]);
        assert_eq!(
            Cabinet::agenda_name(cabinet.motives()[0], 51414),
            Some("Equipe de vaccination 2 LE FAOUET - Maison de santé")
        );
        for other in ["center1-cabinet-16910.json", "motives-ain.json"] {
            let body = recorded(other);
            let categories: Vec<Category> = drift::parse(MOTIVES, &body).unwrap();
            assert!(!categories.is_empty(), "{other}");
        }
        let body = recorded("center1-cabinet.json");
        let rows: Vec<CabinetRow> = drift::parse(CABINETS, &body).unwrap();
        assert_eq!(rows.len(), 5);
    }

    #[test]
    fn a_motive_without_agendas_is_not_asked() {
        let body = br#"[{"motive_category_id": 1, "motives": [
            {"id": 1, "name": "a", "agendas": []},
            {"id": 2, "name": "b", "agendas": [{"id": 9, "name": "x"}]}]},
            {"motive_category_id": 2, "motives": [{"id": 2, "name": "b", "agendas": [{"id": 9, "name": "x"}]}]}]"#;
        let categories: Vec<Category> = drift::parse(MOTIVES, body).unwrap();
        let cabinet = Cabinet {
            id: 1,
            name: String::new(),
            categories,
        };
        let ids: Vec<u64> = cabinet.motives().iter().map(|m| m.id).collect();
        assert_eq!(ids, [2]);
    }
}
