//! The conformance suite over every backend in the tree that needs no external service.

use avp_agent::storage::conformance::Subject;
use avp_agent::storage::local::disk::DiskVault;
use avp_agent::storage::served::Served;
use avp_agent::storage::{BackendSettings, MemoryBackend};
use avp_protocol::{ExpiryChange, Passphrase};

mod memory {
    use super::*;
    avp_agent::backend_conformance!(|settings: BackendSettings| {
        Subject::new(Box::new(MemoryBackend::in_memory(settings)))
    });
}

/// The age vault on a real directory (real files, real fsync), at a low scrypt work factor.
fn vault(settings: BackendSettings) -> Subject {
    let dir = tempfile::tempdir().expect("temp dir");
    let (disk, store) =
        DiskVault::create(dir.path(), &Passphrase::new("pw"), 10, settings).expect("create vault");
    Subject::with_guard(Box::new(Served::new("vault", store, disk)), dir)
}

mod vault {
    avp_agent::backend_conformance!(super::vault);
}

/// The same rules hold after the vault is reloaded from disk: every rule's final state is
/// replayed from the journal and compared.
#[test]
fn the_vault_reloads_to_the_same_state() {
    use avp_agent::storage::Backend;
    use avp_protocol::{Labels, SecretName, Timestamp, WorkspaceId};
    let dir = tempfile::tempdir().expect("temp dir");
    let pass = Passphrase::new("pw");
    let settings = BackendSettings::default();
    let now = Timestamp::now();
    let ws = WorkspaceId::new("w").unwrap();
    {
        let (disk, store) = DiskVault::create(dir.path(), &pass, 10, settings).unwrap();
        let backend = Served::new("vault", store, disk);
        for i in 0..30u32 {
            let name = SecretName::new(format!("k{}", i % 7)).unwrap();
            let value = avp_protocol::SecretValue::from_slice(&i.to_be_bytes());
            backend
                .store(&ws, &name, value, None, ExpiryChange::Keep, now)
                .unwrap();
        }
        backend
            .delete(&ws, &SecretName::new("k3").unwrap(), now)
            .unwrap();
    }
    let (_, store) = DiskVault::open(dir.path(), &pass, settings).unwrap();
    let page = store.list(&ws, &Labels::empty(), None, 100, now);
    let names: Vec<_> = page
        .secrets
        .iter()
        .map(|m| m.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["k0", "k1", "k2", "k4", "k5", "k6"]);
    let k6 = store
        .retrieve(&ws, &SecretName::new("k6").unwrap(), None, now)
        .unwrap();
    assert_eq!(k6.value.expose_secret(), &27u32.to_be_bytes());
    assert_eq!(k6.version, 4);
}
