-- A revoked grant's tokens are hidden from every read by their revocation
-- record and deleted by the token sweep, instead of being found through an
-- index of tokens by grant when the grant is revoked: the tokens a refresh
-- stores joined their grant's entries in that index, wherever the grant
-- is, a page write per refresh for one statement that runs when a grant
-- is revoked.
--
-- A revocation record must outlive its grant's tokens: DeleteExpired
-- forgets it only once a complete pass of the token sweep began after it,
-- which its seq tells (AUTOINCREMENT: never reused, so a record committed
-- after a pass began has a seq above every seq the pass saw).
DROP INDEX tokens_grant_id;
CREATE TABLE grant_revocations_seq (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	grant_id   TEXT NOT NULL UNIQUE,
	expires_at INTEGER NOT NULL
) STRICT;
INSERT INTO grant_revocations_seq (grant_id, expires_at) SELECT grant_id, expires_at FROM grant_revocations ORDER BY grant_id;
DROP TABLE grant_revocations;
ALTER TABLE grant_revocations_seq RENAME TO grant_revocations;
CREATE INDEX grant_revocations_expires_at ON grant_revocations (expires_at);
