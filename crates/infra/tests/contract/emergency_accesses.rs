//! `EmergencyAccessRepository`: break-the-glass grants, listed and filtered.

use jiff::SignedDuration;

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::User;
use carehub_domain::kernel::PageRequest;
use carehub_domain::patients::{EmergencyAccess, EmergencyAccessFilter};
use carehub_infra::Repositories;

use crate::fixtures::patients::{grant, register_named};
use crate::fixtures::{audited, doctor, micros, now};

contract!(emergency_accesses_are_listed_newest_first_filtered_and_page_by_page,);

async fn emergency_accesses_are_listed_newest_first_filtered_and_page_by_page(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let ada = register_named(&repos, "Ada Lovelace", house.id).await;
    let bo = register_named(&repos, "Bo Peep", house.id).await;
    let at = micros(now());
    let named = |access: &EmergencyAccess, user: &User| EmergencyAccess {
        doctor_name: Some(user.full_name.clone()),
        ..access.clone()
    };
    let old = named(
        &grant(&repos, ada.id, house.id, at - SignedDuration::from_hours(3)).await,
        &house,
    );
    let ada_wilson = named(
        &grant(
            &repos,
            ada.id,
            wilson.id,
            at - SignedDuration::from_mins(10),
        )
        .await,
        &wilson,
    );
    let bo_house = named(
        &grant(&repos, bo.id, house.id, at - SignedDuration::from_mins(5)).await,
        &house,
    );

    let list = async |filter: EmergencyAccessFilter| {
        let page = repos
            .emergency_accesses
            .list(filter, PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(page.next, None);
        page.items
    };
    let all = EmergencyAccessFilter::default();
    assert_eq!(
        list(all).await,
        [bo_house.clone(), ada_wilson.clone(), old.clone()]
    );
    assert_eq!(
        list(EmergencyAccessFilter {
            patient_id: Some(ada.id),
            ..all
        })
        .await,
        [ada_wilson.clone(), old.clone()]
    );
    assert_eq!(
        list(EmergencyAccessFilter {
            doctor_id: Some(house.id),
            ..all
        })
        .await,
        [bo_house.clone(), old.clone()]
    );
    assert_eq!(
        list(EmergencyAccessFilter {
            active_at: Some(at),
            ..all
        })
        .await,
        [bo_house.clone(), ada_wilson.clone()]
    );
    assert_eq!(
        list(EmergencyAccessFilter {
            patient_id: Some(ada.id),
            doctor_id: Some(house.id),
            active_at: Some(old.granted_at),
            expired_at: None,
        })
        .await,
        std::slice::from_ref(&old)
    );
    assert!(
        list(EmergencyAccessFilter {
            active_at: Some(old.expires_at),
            patient_id: Some(ada.id),
            doctor_id: Some(house.id),
            expired_at: None,
        })
        .await
        .is_empty(),
        "an access is inactive from its expiry"
    );
    assert_eq!(
        list(EmergencyAccessFilter {
            expired_at: Some(old.expires_at),
            patient_id: Some(ada.id),
            ..all
        })
        .await,
        std::slice::from_ref(&old),
        "an access has expired from its expiry on"
    );
    assert!(
        list(EmergencyAccessFilter {
            expired_at: Some(old.expires_at - SignedDuration::from_micros(1)),
            patient_id: Some(ada.id),
            ..all
        })
        .await
        .is_empty(),
        "an access has not expired before its expiry"
    );
    assert!(
        list(EmergencyAccessFilter {
            active_at: Some(old.granted_at - SignedDuration::from_micros(1)),
            ..all
        })
        .await
        .is_empty(),
        "an access is inactive before it is granted"
    );

    // Page by page.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = repos
            .emergency_accesses
            .list(all, PageRequest::new(Some(2), after).unwrap())
            .await
            .unwrap();
        if page.next.is_some() {
            assert_eq!(page.next, page.items.last().map(|a| a.id));
        }
        seen.extend(page.items);
        after = page.next;
        if after.is_none() {
            break;
        }
        assert!(seen.len() < 10, "paging does not end");
    }
    assert_eq!(seen, [bo_house, ada_wilson, old]);

    assert_eq!(
        audited(&repos, ada.id).await,
        [
            AuditAction::PatientCreate,
            AuditAction::EmergencyAccessGrant,
            AuditAction::EmergencyAccessGrant,
        ]
    );
}
