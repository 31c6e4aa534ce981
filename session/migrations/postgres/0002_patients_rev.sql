-- The patient directory's revision: every UpsertPatients bumps it in the same
-- transaction, so a store that caches directory lookups can tell with one
-- tiny read whether its cache still describes the table (across processes).
CREATE TABLE patients_rev (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	rev BIGINT  NOT NULL
);
INSERT INTO patients_rev (id, rev) VALUES (1, 0);
