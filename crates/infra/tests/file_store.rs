//! The lab file store, the same checks on its two kinds: a local directory and an S3 bucket
//! (a moto server of the test's own, see `carehub_infra::testing`).

use carehub_domain::kernel::{LabFileId, LabOrderId};
use carehub_domain::lab::{FileStore, StorageKey};
use carehub_infra::lab::{FileStoreError, LocalOrObjectStore, S3Settings};
use carehub_infra::testing::ScratchBucket;
use object_store::ObjectStoreExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;

fn key() -> StorageKey {
    StorageKey::lab_file(LabOrderId::generate(), LabFileId::generate())
}

/// What every file store must do.
async fn keeps_replaces_and_deletes_files(store: &LocalOrObjectStore) {
    let (first, second) = (key(), key());
    assert_eq!(store.get(&first).await.expect("readable"), None);

    let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    store.put(&first, bytes.clone()).await.expect("stored");
    store.put(&second, b"other".to_vec()).await.expect("stored");
    assert_eq!(store.get(&first).await.expect("readable"), Some(bytes));
    assert_eq!(
        store.get(&second).await.expect("readable"),
        Some(b"other".to_vec())
    );

    store
        .put(&first, b"replaced".to_vec())
        .await
        .expect("stored");
    assert_eq!(
        store.get(&first).await.expect("readable"),
        Some(b"replaced".to_vec())
    );

    store.delete(&first).await.expect("deleted");
    assert_eq!(store.get(&first).await.expect("readable"), None);
    store
        .delete(&first)
        .await
        .expect("deleting nothing is no error");
    assert_eq!(
        store.get(&second).await.expect("readable"),
        Some(b"other".to_vec()),
        "only the deleted file is gone"
    );
}

#[tokio::test]
async fn a_directory_keeps_replaces_and_deletes_files() {
    let dir = std::env::temp_dir().join(format!("carehub-files-{}", uuid::Uuid::new_v4()));
    let store = LocalOrObjectStore::local(&dir).expect("a directory");
    keeps_replaces_and_deletes_files(&store).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_bucket_keeps_replaces_and_deletes_files() {
    let Some(bucket) = ScratchBucket::create("clinic/files").await else {
        return;
    };
    let store = LocalOrObjectStore::s3(&bucket.settings())
        .await
        .expect("the bucket answers");
    keeps_replaces_and_deletes_files(&store).await;
}

#[tokio::test]
async fn files_stay_under_their_prefix() {
    let Some(bucket) = ScratchBucket::create("clinic-a").await else {
        return;
    };
    let a = LocalOrObjectStore::s3(&bucket.settings())
        .await
        .expect("the bucket answers");
    let b = LocalOrObjectStore::s3(&S3Settings {
        url: format!("s3://{}/clinic-b/", bucket.bucket),
        ..bucket.settings()
    })
    .await
    .expect("the bucket answers");
    let key = key();
    a.put(&key, b"in a".to_vec()).await.expect("stored");
    assert_eq!(b.get(&key).await.expect("readable"), None);
    let root = AmazonS3Builder::new()
        .with_bucket_name(&bucket.bucket)
        .with_endpoint(&bucket.endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("carehub-test")
        .with_secret_access_key("carehub-test-secret")
        .build()
        .expect("a client");
    let object = root
        .get(&Path::from(format!("clinic-a/{}", key.as_str())))
        .await
        .expect("the object is at prefix/key in the bucket");
    assert_eq!(object.bytes().await.expect("readable").as_ref(), b"in a");
    b.delete(&key).await.expect("nothing to delete");
    assert_eq!(a.get(&key).await.expect("readable"), Some(b"in a".to_vec()));
}

#[tokio::test]
async fn a_bucket_that_does_not_answer_or_does_not_exist_stops_the_start() {
    let Some(bucket) = ScratchBucket::create("files").await else {
        return;
    };
    let missing = LocalOrObjectStore::s3(&S3Settings {
        url: "s3://no-such-bucket/files".to_owned(),
        ..bucket.settings()
    })
    .await
    .expect_err("no such bucket");
    assert!(
        matches!(&missing, FileStoreError::Unreachable { bucket, .. } if bucket == "no-such-bucket"),
        "{missing:?}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let down = LocalOrObjectStore::s3(&S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        ..bucket.settings()
    })
    .await
    .expect_err("nothing listens there");
    assert!(
        matches!(down, FileStoreError::Unreachable { .. }),
        "{down:?}"
    );
}

#[tokio::test]
async fn only_s3_urls_with_a_bucket_are_taken() {
    for url in [
        "https://bucket/files",
        "s3://",
        "s3:///files",
        "bucket/files",
        "s3://user@bucket/files",
    ] {
        let refused = LocalOrObjectStore::s3(&S3Settings {
            url: url.to_owned(),
            ..S3Settings::default()
        })
        .await
        .expect_err(url);
        assert!(
            matches!(refused, FileStoreError::Url(_)),
            "{url}: {refused:?}"
        );
    }
}
