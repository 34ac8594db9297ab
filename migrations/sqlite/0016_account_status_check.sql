-- An account's status is one of the names billrun writes (`core::lifecycle::AccountStatus`),
-- held by the store as the other statuses are: a name no release wrote is refused on write,
-- never read back as a guess. SQLite cannot add a CHECK to a table it has (only rebuild the
-- table, and every table naming accounts with it): two triggers hold the same rule.
CREATE TRIGGER accounts_status_known BEFORE INSERT ON accounts
    WHEN NEW.status NOT IN ('active', 'suspended', 'deactivated', 'deleting', 'deleted')
BEGIN
    SELECT RAISE(ABORT, 'accounts_status_check: an account status billrun never writes');
END;
CREATE TRIGGER accounts_status_known_on_update BEFORE UPDATE OF status ON accounts
    WHEN NEW.status NOT IN ('active', 'suspended', 'deactivated', 'deleting', 'deleted')
BEGIN
    SELECT RAISE(ABORT, 'accounts_status_check: an account status billrun never writes');
END;
