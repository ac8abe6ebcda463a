//! `UserRepository`: accounts with their password hashes, found, listed and updated.

use carehub_domain::identity::{
    CreateUserError, Email, FullName, PasswordHash, Role, User, UserChanges, UserFilter, UserId,
    UserStatus, Username,
};
use carehub_domain::kernel::PageRequest;
use carehub_infra::Repositories;
use jiff::Timestamp;

use crate::fixtures::{create_user, new_user, password_hash, some_user};

contract!(
    a_created_user_is_found_by_id_and_by_username_with_their_password_hash,
    a_user_that_does_not_exist_is_not_found,
    a_taken_username_is_refused,
    a_taken_username_is_refused_whatever_its_case,
    users_are_listed_by_role_and_by_status,
    paging_through_users_yields_every_user_exactly_once_in_id_order,
    an_update_changes_only_the_given_fields,
    an_email_can_be_set_and_cleared,
    updating_a_user_that_does_not_exist_finds_nobody,
);

async fn a_created_user_is_found_by_id_and_by_username_with_their_password_hash(
    repos: Repositories,
) {
    let mut user = new_user("dr.house", Role::Doctor, UserStatus::Pending);
    // Microseconds that are not a whole millisecond, so a backend keeping less would show.
    user.created_at = Timestamp::new(user.created_at.as_second(), 123_456_000).unwrap();
    let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
    repos.users.create(&user, &hash).await.unwrap();

    let found = repos.users.find_by_id(user.id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&user));
    assert_eq!(found.unwrap().created_at, user.created_at);

    let (found, found_hash) = repos
        .users
        .find_credentials(&user.username)
        .await
        .unwrap()
        .expect("the user is found by username");
    assert_eq!(found, user);
    assert_eq!(found.created_at, user.created_at);
    assert_eq!(found_hash.as_str(), hash.as_str());
}

async fn a_user_that_does_not_exist_is_not_found(repos: Repositories) {
    some_user(&repos, "someone").await;
    assert_eq!(
        repos.users.find_by_id(UserId::generate()).await.unwrap(),
        None
    );
    let nobody = Username::parse("nobody").unwrap();
    assert!(
        repos
            .users
            .find_credentials(&nobody)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_taken_username_is_refused(repos: Repositories) {
    let first = some_user(&repos, "gregory").await;
    let second = new_user("gregory", Role::Doctor, UserStatus::Active);
    let refused = repos.users.create(&second, &password_hash()).await;
    assert!(
        matches!(refused, Err(CreateUserError::UsernameTaken)),
        "expected UsernameTaken, got {refused:?}"
    );
    // The first account is untouched and the second was not stored.
    assert_eq!(repos.users.find_by_id(first.id).await.unwrap(), Some(first));
    assert_eq!(repos.users.find_by_id(second.id).await.unwrap(), None);
}

async fn a_taken_username_is_refused_whatever_its_case(repos: Repositories) {
    some_user(&repos, "gregory").await;
    let shouted = new_user("GREGORY", Role::Doctor, UserStatus::Active);
    let refused = repos.users.create(&shouted, &password_hash()).await;
    assert!(
        matches!(refused, Err(CreateUserError::UsernameTaken)),
        "expected UsernameTaken, got {refused:?}"
    );
}

async fn users_are_listed_by_role_and_by_status(repos: Repositories) {
    let active_doctor = create_user(&repos, "doc.active", Role::Doctor, UserStatus::Active).await;
    let pending_doctor =
        create_user(&repos, "doc.pending", Role::Doctor, UserStatus::Pending).await;
    let pending_lab =
        create_user(&repos, "lab.pending", Role::Laboratory, UserStatus::Pending).await;
    let patient = create_user(&repos, "patient", Role::Patient, UserStatus::Active).await;

    let list = async |filter: UserFilter| {
        let page = repos
            .users
            .list(filter, PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(page.next, None);
        page.items
    };
    let sorted = |mut users: Vec<User>| {
        users.sort_by_key(|u| u.id);
        users
    };

    let doctors = UserFilter {
        role: Some(Role::Doctor),
        status: None,
    };
    assert_eq!(
        list(doctors).await,
        sorted(vec![active_doctor.clone(), pending_doctor.clone()])
    );

    let pending = UserFilter {
        role: None,
        status: Some(UserStatus::Pending),
    };
    assert_eq!(
        list(pending).await,
        sorted(vec![pending_doctor.clone(), pending_lab.clone()])
    );

    let pending_doctors = UserFilter {
        role: Some(Role::Doctor),
        status: Some(UserStatus::Pending),
    };
    assert_eq!(list(pending_doctors).await, vec![pending_doctor.clone()]);

    let suspended = UserFilter {
        role: None,
        status: Some(UserStatus::Suspended),
    };
    assert_eq!(list(suspended).await, vec![]);

    assert_eq!(
        list(UserFilter::default()).await,
        sorted(vec![active_doctor, pending_doctor, pending_lab, patient])
    );
}

async fn paging_through_users_yields_every_user_exactly_once_in_id_order(repos: Repositories) {
    let mut expected = Vec::new();
    for n in 0..7 {
        expected.push(some_user(&repos, &format!("user{n}")).await);
    }
    expected.sort_by_key(|u| u.id);

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut next = None;
    loop {
        let request = PageRequest::new(Some(3), next).unwrap();
        let page = repos
            .users
            .list(UserFilter::default(), request)
            .await
            .unwrap();
        sizes.push(page.items.len());
        if let Some(key) = page.next {
            assert_eq!(
                Some(key),
                page.items.last().map(|u| u.id),
                "next continues after the last item of the page"
            );
        }
        seen.extend(page.items);
        next = page.next;
        if next.is_none() {
            break;
        }
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(seen, expected);

    // A page that ends exactly at the last user says no more follow.
    let request = PageRequest::new(Some(7), None).unwrap();
    let page = repos
        .users
        .list(UserFilter::default(), request)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 7);
    assert_eq!(page.next, None);
}

async fn an_update_changes_only_the_given_fields(repos: Repositories) {
    let user = create_user(&repos, "ann", Role::Secretary, UserStatus::Pending).await;
    let bystander = some_user(&repos, "bystander").await;

    let unchanged = repos
        .users
        .update(user.id, &UserChanges::default())
        .await
        .unwrap();
    assert_eq!(unchanged.as_ref(), Some(&user));

    let renamed = repos
        .users
        .update(
            user.id,
            &UserChanges {
                full_name: Some(FullName::parse("Ann Other").unwrap()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    let mut expected = user.clone();
    expected.full_name = FullName::parse("Ann Other").unwrap();
    assert_eq!(renamed, expected);

    let promoted = repos
        .users
        .update(
            user.id,
            &UserChanges {
                role: Some(Role::Doctor),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    expected.role = Role::Doctor;
    assert_eq!(promoted, expected);

    let suspended = repos
        .users
        .update(
            user.id,
            &UserChanges {
                status: Some(UserStatus::Suspended),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    expected.status = UserStatus::Suspended;
    assert_eq!(suspended, expected);

    let everything = repos
        .users
        .update(
            user.id,
            &UserChanges {
                full_name: Some(FullName::parse("Ann Final").unwrap()),
                email: Some(Some(Email::parse("final@clinic.example").unwrap())),
                role: Some(Role::Laboratory),
                status: Some(UserStatus::Active),
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    expected.full_name = FullName::parse("Ann Final").unwrap();
    expected.email = Some(Email::parse("final@clinic.example").unwrap());
    expected.role = Role::Laboratory;
    expected.status = UserStatus::Active;
    assert_eq!(everything, expected);

    // What update returned is what is stored, including the untouched username and password.
    assert_eq!(
        repos.users.find_by_id(user.id).await.unwrap(),
        Some(expected.clone())
    );
    let (stored, hash) = repos
        .users
        .find_credentials(&user.username)
        .await
        .unwrap()
        .expect("the user is still found by username");
    assert_eq!(stored, expected);
    assert_eq!(hash.as_str(), password_hash().as_str());
    // Nobody else changed.
    assert_eq!(
        repos.users.find_by_id(bystander.id).await.unwrap(),
        Some(bystander)
    );
}

async fn an_email_can_be_set_and_cleared(repos: Repositories) {
    let mut user = new_user("ann", Role::Patient, UserStatus::Active);
    user.email = None;
    repos.users.create(&user, &password_hash()).await.unwrap();
    assert_eq!(
        repos
            .users
            .find_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .email,
        None
    );

    let address = Email::parse("ann@clinic.example").unwrap();
    let with_email = repos
        .users
        .update(
            user.id,
            &UserChanges {
                email: Some(Some(address.clone())),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    assert_eq!(with_email.email, Some(address.clone()));

    // Leaving the email alone keeps it.
    let kept = repos
        .users
        .update(
            user.id,
            &UserChanges {
                role: Some(Role::Patient),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    assert_eq!(kept.email, Some(address));

    let cleared = repos
        .users
        .update(
            user.id,
            &UserChanges {
                email: Some(None),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap()
        .expect("the user exists");
    assert_eq!(cleared, user);
    assert_eq!(
        repos
            .users
            .find_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .email,
        None
    );
}

async fn updating_a_user_that_does_not_exist_finds_nobody(repos: Repositories) {
    let existing = some_user(&repos, "existing").await;
    let changes = UserChanges {
        full_name: Some(FullName::parse("Ghost").unwrap()),
        status: Some(UserStatus::Suspended),
        ..UserChanges::default()
    };
    assert_eq!(
        repos
            .users
            .update(UserId::generate(), &changes)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        repos.users.find_by_id(existing.id).await.unwrap(),
        Some(existing)
    );
}
