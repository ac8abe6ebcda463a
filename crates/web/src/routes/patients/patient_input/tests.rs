//! How a patient's input parses: every field, every violation with its path, the way back from
//! the domain's details to an input, and how a merge patch changes an input.

use serde_json::json;

use super::*;

const TODAY: Date = jiff::civil::date(2026, 11, 22);

fn minimal() -> PatientInput {
    PatientInput {
        full_name: Some("Ada Lovelace".into()),
        date_of_birth: Some("1985-12-10".into()),
        sex: Some("female".into()),
        ..PatientInput::default()
    }
}

fn full() -> PatientInput {
    PatientInput {
        contact: Some(ContactInput {
            phone: Some("+44 20 7946 0958".into()),
            email: Some("ada@example.org".into()),
            address: Some(AddressInput {
                lines: vec!["12 St James's Square".into()],
                city: Some("London".into()),
                postal_code: Some("SW1Y 4JH".into()),
                country: Some("GB".into()),
            }),
        }),
        identifiers: Some(vec![IdentifierInput {
            system: Some("National_ID".into()),
            value: Some("QQ 12 34 56 C".into()),
        }]),
        insurance: Some(InsuranceInput {
            provider: Some("Helvetia".into()),
            policy_number: Some("P-123".into()),
            group: None,
            valid_until: Some("2027-12-31".into()),
        }),
        emergency_contact: Some(EmergencyContactInput {
            name: Some("Annabella Byron".into()),
            relationship: Some("mother".into()),
            phone: Some("+44 20 7946 0000".into()),
        }),
        location: Some(LocationInput {
            room: Some("3.14".into()),
            bed: Some("B".into()),
        }),
        user_id: Some(Uuid::now_v7()),
        ..minimal()
    }
}

fn fields(errors: &ValidationErrors) -> Vec<&str> {
    errors.errors().iter().map(|e| e.field.as_str()).collect()
}

#[test]
fn a_complete_patient_parses_and_round_trips_through_its_input() {
    let details = full().parse(TODAY).expect("valid");
    assert_eq!(details.identifiers[0].system.as_str(), "national_id");
    let again = PatientInput::from(&details).parse(TODAY).expect("valid");
    assert_eq!(again, details);
    let minimal_details = minimal().parse(TODAY).expect("valid");
    assert_eq!(PatientInput::from(&minimal_details), minimal());
}

#[test]
fn every_violation_is_reported_with_its_path() {
    let input = PatientInput {
        full_name: None,
        date_of_birth: Some("2030-01-01".into()),
        sex: Some("f".into()),
        contact: Some(ContactInput {
            phone: Some("call me".into()),
            email: Some("not-an-email".into()),
            address: Some(AddressInput::default()),
        }),
        identifiers: Some(vec![
            IdentifierInput {
                system: Some("national id".into()),
                value: Some(String::new()),
            },
            IdentifierInput {
                system: Some("passport".into()),
                value: Some("X1".into()),
            },
            IdentifierInput {
                system: Some("PASSPORT".into()),
                value: Some("X2".into()),
            },
        ]),
        insurance: Some(InsuranceInput {
            valid_until: Some("2027-02-30".into()),
            ..InsuranceInput::default()
        }),
        emergency_contact: Some(EmergencyContactInput::default()),
        location: Some(LocationInput {
            room: Some("r".repeat(33)),
            bed: None,
        }),
        user_id: None,
    };
    let errors = input.parse(TODAY).expect_err("invalid");
    assert_eq!(
        fields(&errors),
        [
            "full_name",
            "date_of_birth",
            "sex",
            "contact.phone",
            "contact.email",
            "contact.address.lines",
            "identifiers[0].system",
            "identifiers[0].value",
            "identifiers[2].system",
            "insurance.provider",
            "insurance.policy_number",
            "insurance.valid_until",
            "emergency_contact.name",
            "emergency_contact.phone",
            "location.room",
        ]
    );
}

#[test]
fn an_invalid_registration_reports_every_field_whatever_account_it_names() {
    let input = PatientInput {
        full_name: None,
        date_of_birth: Some("2030-01-01".into()),
        sex: Some("f".into()),
        user_id: Some(Uuid::now_v7()),
        ..PatientInput::default()
    };
    let errors = input.parse(TODAY).expect_err("invalid");
    assert_eq!(fields(&errors), ["full_name", "date_of_birth", "sex"]);
}

#[test]
fn lists_have_a_maximum_size() {
    let input = PatientInput {
        identifiers: Some(
            (0..=MAX_IDENTIFIERS)
                .map(|i| IdentifierInput {
                    system: Some(format!("system-{i}")),
                    value: Some("v".into()),
                })
                .collect(),
        ),
        ..minimal()
    };
    let errors = input.parse(TODAY).expect_err("too many");
    assert_eq!(fields(&errors), ["identifiers"]);
}

// ---- Merge patches ----

fn current() -> PatientInput {
    serde_json::from_value(json!({
        "full_name": "Ada Lovelace",
        "date_of_birth": "1985-12-10",
        "sex": "female",
        "contact": {"phone": "+44 20 7946 0958", "email": "ada@example.org"},
        "location": {"room": "3.14", "bed": "B"},
    }))
    .expect("an input")
}

#[test]
fn a_merge_patch_replaces_present_fields_and_keeps_absent_ones() {
    let merged = apply_merge_patch(
        &current(),
        &json!({"full_name": "Ada King", "contact": {"phone": "+44 20 0000 0000"}}),
    )
    .expect("merged");
    assert_eq!(merged.full_name.as_deref(), Some("Ada King"));
    assert_eq!(merged.date_of_birth.as_deref(), Some("1985-12-10"));
    let contact = merged.contact.expect("contact kept");
    assert_eq!(contact.phone.as_deref(), Some("+44 20 0000 0000"));
    assert_eq!(contact.email.as_deref(), Some("ada@example.org"));
    assert_eq!(merged.location.and_then(|l| l.bed).as_deref(), Some("B"));
}

#[test]
fn null_in_a_merge_patch_clears_the_field() {
    let merged = apply_merge_patch(
        &current(),
        &json!({"location": null, "contact": {"email": null}, "full_name": null}),
    )
    .expect("merged");
    assert_eq!(merged.location, None);
    assert_eq!(merged.contact.as_ref().and_then(|c| c.email.as_ref()), None);
    assert_eq!(merged.full_name, None);
    let errors = merged.parse(TODAY).expect_err("a name is required");
    assert_eq!(fields(&errors), ["full_name"]);
}

#[test]
fn a_merge_patch_adds_a_part_that_was_absent() {
    let merged = apply_merge_patch(
        &current(),
        &json!({"insurance": {"provider": "NHS", "policy_number": "1"}}),
    )
    .expect("merged");
    assert_eq!(
        merged.insurance.and_then(|i| i.provider).as_deref(),
        Some("NHS")
    );
}

#[test]
fn a_profile_changed_by_a_merge_patch_is_validated_whole() {
    let current = full().parse(TODAY).expect("valid");
    let changed = apply_merge_patch(
        &PatientInput::from(&current),
        &json!({"date_of_birth": "2030-01-01", "sex": null}),
    )
    .expect("merged");
    let errors = changed.parse(TODAY).expect_err("invalid");
    assert_eq!(fields(&errors), ["date_of_birth", "sex"]);
}

#[test]
fn unknown_fields_and_wrong_types_in_a_merge_patch_are_named() {
    let errors = apply_merge_patch(&current(), &json!({"mrn": "CH-0000-0000-0"}))
        .expect_err("unknown field");
    assert_eq!(fields(&errors), ["mrn"]);
    let errors = apply_merge_patch(&current(), &json!({"contact": {"fax": "1"}}))
        .expect_err("unknown nested field");
    assert_eq!(fields(&errors), ["contact.fax"]);
    let errors =
        apply_merge_patch(&current(), &json!({"location": {"room": 3}})).expect_err("wrong type");
    assert_eq!(fields(&errors), ["location.room"]);
}
