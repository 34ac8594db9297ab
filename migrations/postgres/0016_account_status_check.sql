-- An account's status is one of the names billrun writes (`core::lifecycle::AccountStatus`),
-- held by the store as the other statuses are: a name no release wrote is refused on write,
-- never read back as a guess.
ALTER TABLE accounts ADD CONSTRAINT accounts_status_check
    CHECK (status IN ('active', 'suspended', 'deactivated', 'deleting', 'deleted'));
