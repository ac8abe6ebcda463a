//! The allergy check: a medication matches a recorded allergy when it is the substance itself,
//! or when both belong to one drug class of a small built-in table (an allergy to penicillin
//! matches amoxicillin; one to amoxicillin matches ampicillin, a penicillin too). Names are
//! compared case-insensitively, word by word, so "Amoxicillin 500 mg" is amoxicillin and
//! "penicillin" is not found inside "benzylpenicillin" by accident but through the table.

use crate::patients::Allergy;

/// Why a medication matches an allergy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchReason {
    /// The medication is the allergy's substance.
    SameSubstance,
    /// The medication and the allergy's substance belong to this drug class.
    DrugClass(String),
}

/// One recorded allergy that a medication matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllergyMatch {
    /// The substance as recorded.
    pub substance: String,
    pub reason: MatchReason,
}

/// A drug class: its name, the other names an allergy may be recorded under, and its members.
struct DrugClass {
    name: &'static str,
    aliases: &'static [&'static str],
    members: &'static [&'static str],
}

/// The classes whose members commonly cross-react. Not a formulary: a short list of the
/// classes behind most recorded drug allergies.
const CLASSES: &[DrugClass] = &[
    DrugClass {
        name: "penicillins",
        aliases: &["penicillin", "penicillins", "beta-lactam", "beta lactam"],
        members: &[
            "amoxicillin",
            "ampicillin",
            "benzylpenicillin",
            "phenoxymethylpenicillin",
            "penicillin g",
            "penicillin v",
            "piperacillin",
            "flucloxacillin",
            "dicloxacillin",
            "cloxacillin",
            "nafcillin",
            "oxacillin",
            "ticarcillin",
            "co-amoxiclav",
        ],
    },
    DrugClass {
        name: "cephalosporins",
        aliases: &["cephalosporin", "cephalosporins"],
        members: &[
            "cefalexin",
            "cephalexin",
            "cefazolin",
            "cefuroxime",
            "ceftriaxone",
            "cefotaxime",
            "ceftazidime",
            "cefepime",
            "cefixime",
            "cefaclor",
            "cefadroxil",
            "cefpodoxime",
        ],
    },
    DrugClass {
        name: "sulfonamide antibiotics",
        aliases: &["sulfa", "sulfonamide", "sulfonamides", "sulpha"],
        members: &[
            "sulfamethoxazole",
            "co-trimoxazole",
            "trimethoprim-sulfamethoxazole",
            "sulfadiazine",
            "sulfasalazine",
            "sulfisoxazole",
        ],
    },
    DrugClass {
        name: "NSAIDs",
        aliases: &["nsaid", "nsaids", "non-steroidal anti-inflammatory"],
        members: &[
            "aspirin",
            "acetylsalicylic acid",
            "ibuprofen",
            "naproxen",
            "diclofenac",
            "ketoprofen",
            "ketorolac",
            "indometacin",
            "indomethacin",
            "piroxicam",
            "meloxicam",
            "celecoxib",
            "etoricoxib",
        ],
    },
    DrugClass {
        name: "macrolides",
        aliases: &["macrolide", "macrolides"],
        members: &[
            "erythromycin",
            "clarithromycin",
            "azithromycin",
            "roxithromycin",
        ],
    },
    DrugClass {
        name: "fluoroquinolones",
        aliases: &[
            "fluoroquinolone",
            "fluoroquinolones",
            "quinolone",
            "quinolones",
        ],
        members: &[
            "ciprofloxacin",
            "levofloxacin",
            "moxifloxacin",
            "ofloxacin",
            "norfloxacin",
        ],
    },
    DrugClass {
        name: "tetracyclines",
        aliases: &["tetracyclines"],
        members: &[
            "tetracycline",
            "doxycycline",
            "minocycline",
            "oxytetracycline",
        ],
    },
    DrugClass {
        name: "opioids",
        aliases: &["opioid", "opioids", "opiate", "opiates"],
        members: &[
            "morphine",
            "codeine",
            "oxycodone",
            "hydromorphone",
            "hydrocodone",
            "tramadol",
            "fentanyl",
            "pethidine",
            "meperidine",
            "tapentadol",
        ],
    },
    DrugClass {
        name: "ACE inhibitors",
        aliases: &[
            "ace inhibitor",
            "ace inhibitors",
            "ace-inhibitor",
            "ace-inhibitors",
        ],
        members: &[
            "lisinopril",
            "enalapril",
            "ramipril",
            "perindopril",
            "captopril",
            "quinapril",
            "benazepril",
            "fosinopril",
        ],
    },
];

/// The recorded allergies that `medication` matches, each once, in the order recorded.
pub fn allergy_matches(medication: &str, allergies: &[Allergy]) -> Vec<AllergyMatch> {
    let medication = words(medication);
    if medication.is_empty() {
        return Vec::new();
    }
    let mut matches: Vec<AllergyMatch> = Vec::new();
    for allergy in allergies {
        let substance = words(allergy.substance.as_str());
        if substance.is_empty() || matches.iter().any(|m| words(&m.substance) == substance) {
            continue;
        }
        if let Some(reason) = reason(&medication, &substance) {
            matches.push(AllergyMatch {
                substance: allergy.substance.as_str().to_owned(),
                reason,
            });
        }
    }
    matches
}

fn reason(medication: &[String], substance: &[String]) -> Option<MatchReason> {
    if contains(medication, substance) {
        return Some(MatchReason::SameSubstance);
    }
    CLASSES
        .iter()
        .find(|class| {
            let names_class = class
                .aliases
                .iter()
                .chain(class.members)
                .any(|name| words(name) == substance);
            names_class
                && class
                    .members
                    .iter()
                    .any(|m| contains(medication, &words(m)))
        })
        .map(|class| MatchReason::DrugClass(class.name.to_owned()))
}

/// The lowercase words of a name: letters, digits and hyphens, split on anything else.
fn words(name: &str) -> Vec<String> {
    name.split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether `needle`'s words appear in `haystack` one after the other.
fn contains(haystack: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Text;

    fn allergies(substances: &[&str]) -> Vec<Allergy> {
        substances
            .iter()
            .map(|s| Allergy {
                substance: Text::line(s, 200).expect("a substance"),
                reaction: None,
                severity: None,
            })
            .collect()
    }

    fn reasons(medication: &str, substances: &[&str]) -> Vec<(String, MatchReason)> {
        allergy_matches(medication, &allergies(substances))
            .into_iter()
            .map(|m| (m.substance, m.reason))
            .collect()
    }

    #[test]
    fn the_substance_itself_matches_whatever_its_case_and_dose() {
        assert_eq!(
            reasons("Amoxicillin 500 mg capsules", &["AMOXICILLIN"]),
            [("AMOXICILLIN".to_owned(), MatchReason::SameSubstance)]
        );
        assert_eq!(
            reasons("acetylsalicylic acid", &["Acetylsalicylic  Acid"]),
            [(
                "Acetylsalicylic  Acid".to_owned(),
                MatchReason::SameSubstance
            )]
        );
    }

    #[test]
    fn a_class_allergy_matches_its_members() {
        assert_eq!(
            reasons("amoxicillin", &["penicillin"]),
            [(
                "penicillin".to_owned(),
                MatchReason::DrugClass("penicillins".to_owned())
            )]
        );
        assert_eq!(
            reasons("Ibuprofen 400mg", &["NSAIDs"]),
            [(
                "NSAIDs".to_owned(),
                MatchReason::DrugClass("NSAIDs".to_owned())
            )]
        );
        assert_eq!(
            reasons("co-trimoxazole", &["sulfa"]),
            [(
                "sulfa".to_owned(),
                MatchReason::DrugClass("sulfonamide antibiotics".to_owned())
            )]
        );
    }

    #[test]
    fn an_allergy_to_one_member_matches_another_of_its_class() {
        assert_eq!(
            reasons("ampicillin", &["amoxicillin"]),
            [(
                "amoxicillin".to_owned(),
                MatchReason::DrugClass("penicillins".to_owned())
            )]
        );
        assert_eq!(
            reasons("enalapril", &["lisinopril"]),
            [(
                "lisinopril".to_owned(),
                MatchReason::DrugClass("ACE inhibitors".to_owned())
            )]
        );
    }

    #[test]
    fn unrelated_medications_and_parts_of_words_do_not_match() {
        assert!(reasons("paracetamol", &["penicillin", "sulfa", "latex"]).is_empty());
        // "cillin" inside a longer name is not the substance; the class table decides.
        assert!(reasons("ampicillin", &["cillin"]).is_empty());
        assert!(reasons("metformin", &["met"]).is_empty());
        assert!(
            reasons("cefalexin", &["penicillin"]).is_empty(),
            "another class"
        );
        assert!(reasons("", &["penicillin"]).is_empty());
    }

    #[test]
    fn each_allergy_is_listed_once_in_the_order_recorded() {
        assert_eq!(
            reasons(
                "co-amoxiclav",
                &["latex", "Penicillin", "penicillin", "co-amoxiclav"]
            ),
            [
                (
                    "Penicillin".to_owned(),
                    MatchReason::DrugClass("penicillins".to_owned())
                ),
                ("co-amoxiclav".to_owned(), MatchReason::SameSubstance),
            ]
        );
    }
}
