-- RevokeTokensOf (the tokens a user granted a client) no longer finds them
-- through an index of tokens by user and client: every token a user's
-- grant stored joined that user's entries there, wherever they were, a
-- page write per token on a server with many users for one statement that
-- runs when an administrator revokes a consent.
--
-- Instead RevokeTokensOf stores a marker row in tokens itself (kind
-- 'revoked', the user and client, a hash no token hashes to), which hides
-- every token of that user and client with a lower rowid: the ones stored
-- before it. Tokens stored later get higher rowids, and always will: the
-- marker stays, so the highest rowid never falls below it and SQLite never
-- hands out a rowid under it again. The token sweep deletes the hidden
-- tokens; a later revocation of the same user and client replaces the
-- marker. Only markers enter the new partial index, which every read of a
-- user's token probes.
DROP INDEX tokens_subject_client_id;
CREATE INDEX tokens_revoked ON tokens (subject, client_id) WHERE kind = 'revoked';
