//! France's departments (and the overseas collectivities the export accepts): code,
//! name, region code and region name, as the INSEE's official geographic code lists
//! them. The open-data export publishes them (`departements.json`) and a practice's
//! public department must be one of them.

/// The codes of [`DEPARTMENTS`] as a pattern (the OpenAPI document's; a test holds the
/// two together).
pub const DEPARTMENT_PATTERN: &str = "^(0[1-9]|1[0-9]|2[1-9AB]|[3-8][0-9]|9[0-5]|97[1-8])$";

/// A department as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Department {
    pub code: &'static str,
    pub name: &'static str,
    /// The INSEE region code; 0 for a collectivity outside any region.
    pub region_code: u16,
    pub region: &'static str,
}

const ARA: (u16, &str) = (84, "Auvergne-Rhône-Alpes");
const BFC: (u16, &str) = (27, "Bourgogne-Franche-Comté");
const BRE: (u16, &str) = (53, "Bretagne");
const CVL: (u16, &str) = (24, "Centre-Val de Loire");
const COR: (u16, &str) = (94, "Corse");
const GES: (u16, &str) = (44, "Grand Est");
const HDF: (u16, &str) = (32, "Hauts-de-France");
const IDF: (u16, &str) = (11, "Île-de-France");
const NOR: (u16, &str) = (28, "Normandie");
const NAQ: (u16, &str) = (75, "Nouvelle-Aquitaine");
const OCC: (u16, &str) = (76, "Occitanie");
const PDL: (u16, &str) = (52, "Pays de la Loire");
const PAC: (u16, &str) = (93, "Provence-Alpes-Côte d'Azur");
const COM: (u16, &str) = (0, "Collectivités d'outre-mer");

/// Every department, in code order.
pub const DEPARTMENTS: &[(&str, &str, (u16, &str))] = &[
    ("01", "Ain", ARA),
    ("02", "Aisne", HDF),
    ("03", "Allier", ARA),
    ("04", "Alpes-de-Haute-Provence", PAC),
    ("05", "Hautes-Alpes", PAC),
    ("06", "Alpes-Maritimes", PAC),
    ("07", "Ardèche", ARA),
    ("08", "Ardennes", GES),
    ("09", "Ariège", OCC),
    ("10", "Aube", GES),
    ("11", "Aude", OCC),
    ("12", "Aveyron", OCC),
    ("13", "Bouches-du-Rhône", PAC),
    ("14", "Calvados", NOR),
    ("15", "Cantal", ARA),
    ("16", "Charente", NAQ),
    ("17", "Charente-Maritime", NAQ),
    ("18", "Cher", CVL),
    ("19", "Corrèze", NAQ),
    ("21", "Côte-d'Or", BFC),
    ("22", "Côtes-d'Armor", BRE),
    ("23", "Creuse", NAQ),
    ("24", "Dordogne", NAQ),
    ("25", "Doubs", BFC),
    ("26", "Drôme", ARA),
    ("27", "Eure", NOR),
    ("28", "Eure-et-Loir", CVL),
    ("29", "Finistère", BRE),
    ("2A", "Corse-du-Sud", COR),
    ("2B", "Haute-Corse", COR),
    ("30", "Gard", OCC),
    ("31", "Haute-Garonne", OCC),
    ("32", "Gers", OCC),
    ("33", "Gironde", NAQ),
    ("34", "Hérault", OCC),
    ("35", "Ille-et-Vilaine", BRE),
    ("36", "Indre", CVL),
    ("37", "Indre-et-Loire", CVL),
    ("38", "Isère", ARA),
    ("39", "Jura", BFC),
    ("40", "Landes", NAQ),
    ("41", "Loir-et-Cher", CVL),
    ("42", "Loire", ARA),
    ("43", "Haute-Loire", ARA),
    ("44", "Loire-Atlantique", PDL),
    ("45", "Loiret", CVL),
    ("46", "Lot", OCC),
    ("47", "Lot-et-Garonne", NAQ),
    ("48", "Lozère", OCC),
    ("49", "Maine-et-Loire", PDL),
    ("50", "Manche", NOR),
    ("51", "Marne", GES),
    ("52", "Haute-Marne", GES),
    ("53", "Mayenne", PDL),
    ("54", "Meurthe-et-Moselle", GES),
    ("55", "Meuse", GES),
    ("56", "Morbihan", BRE),
    ("57", "Moselle", GES),
    ("58", "Nièvre", BFC),
    ("59", "Nord", HDF),
    ("60", "Oise", HDF),
    ("61", "Orne", NOR),
    ("62", "Pas-de-Calais", HDF),
    ("63", "Puy-de-Dôme", ARA),
    ("64", "Pyrénées-Atlantiques", NAQ),
    ("65", "Hautes-Pyrénées", OCC),
    ("66", "Pyrénées-Orientales", OCC),
    ("67", "Bas-Rhin", GES),
    ("68", "Haut-Rhin", GES),
    ("69", "Rhône", ARA),
    ("70", "Haute-Saône", BFC),
    ("71", "Saône-et-Loire", BFC),
    ("72", "Sarthe", PDL),
    ("73", "Savoie", ARA),
    ("74", "Haute-Savoie", ARA),
    ("75", "Paris", IDF),
    ("76", "Seine-Maritime", NOR),
    ("77", "Seine-et-Marne", IDF),
    ("78", "Yvelines", IDF),
    ("79", "Deux-Sèvres", NAQ),
    ("80", "Somme", HDF),
    ("81", "Tarn", OCC),
    ("82", "Tarn-et-Garonne", OCC),
    ("83", "Var", PAC),
    ("84", "Vaucluse", PAC),
    ("85", "Vendée", PDL),
    ("86", "Vienne", NAQ),
    ("87", "Haute-Vienne", NAQ),
    ("88", "Vosges", GES),
    ("89", "Yonne", BFC),
    ("90", "Territoire de Belfort", BFC),
    ("91", "Essonne", IDF),
    ("92", "Hauts-de-Seine", IDF),
    ("93", "Seine-Saint-Denis", IDF),
    ("94", "Val-de-Marne", IDF),
    ("95", "Val-d'Oise", IDF),
    ("971", "Guadeloupe", (1, "Guadeloupe")),
    ("972", "Martinique", (2, "Martinique")),
    ("973", "Guyane", (3, "Guyane")),
    ("974", "La Réunion", (4, "La Réunion")),
    ("975", "Saint-Pierre-et-Miquelon", COM),
    ("976", "Mayotte", (6, "Mayotte")),
    ("977", "Saint-Barthélemy", COM),
    ("978", "Saint-Martin", COM),
];

/// The department of `code`, if there is one.
pub fn department(code: &str) -> Option<Department> {
    DEPARTMENTS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|&(code, name, (region_code, region))| Department {
            code,
            name,
            region_code,
            region,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_department_once_in_order_and_no_others() {
        assert_eq!(DEPARTMENTS.len(), 96 + 8);
        let codes: Vec<&str> = DEPARTMENTS.iter().map(|d| d.0).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(codes, sorted);
        assert_eq!(department("2A").unwrap().region, "Corse");
        assert_eq!(department("75").unwrap().region_code, 11);
        for absent in ["20", "00", "96", "979", "7"] {
            assert!(department(absent).is_none(), "{absent}");
        }
    }

    /// The OpenAPI pattern of a department (`PublicInfo`, `PublicPatch`) admits exactly
    /// the codes of this table.
    #[test]
    fn the_schema_pattern_is_the_table() {
        let pattern = regex::Regex::new(DEPARTMENT_PATTERN).unwrap();
        let mut admitted = Vec::new();
        for a in "0123456789AB".chars() {
            for b in "0123456789AB".chars() {
                admitted.push(format!("{a}{b}"));
                for c in "0123456789".chars() {
                    admitted.push(format!("{a}{b}{c}"));
                }
            }
        }
        admitted.retain(|code| pattern.is_match(code));
        admitted.sort();
        let mut table: Vec<String> = DEPARTMENTS.iter().map(|d| d.0.to_string()).collect();
        table.sort();
        assert_eq!(admitted, table);
    }
}
