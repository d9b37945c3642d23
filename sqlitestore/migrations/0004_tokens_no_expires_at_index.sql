-- Every token insert paid for an entry in tokens_expires_at, an index that
-- only the expiry sweep read: without it a client_credentials token is two
-- B-tree inserts instead of three, and the writer spends about a fifth less
-- per such token (BenchmarkWriterBatch). DeleteExpired now finds expired
-- tokens by walking the table in rowid ranges on a read connection, off the
-- writer, and deletes them by rowid (sweep.go).
DROP INDEX tokens_expires_at;
