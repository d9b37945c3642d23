-- client_credentials access tokens belong to no grant (grant_id ''):
-- RevokeGrant never looks for them, so the grant_id index leaves them out:
-- one B-tree insert less for every such token. The statement that deletes
-- a grant's tokens repeats the index's condition so that SQLite uses it.
DROP INDEX tokens_grant_id;
CREATE INDEX tokens_grant_id ON tokens (grant_id) WHERE grant_id <> '';
